#include "ops/op.h"

namespace irnet {

Window Window::from(const OpDesc& d) {
  const auto k = d.ints_attr("kernel_size", 2);
  const auto s = d.ints_attr("stride", 2);
  const auto p = d.ints_attr("padding", 2);
  check(k[0] >= 1 && k[1] >= 1, d.where(), ": kernel_size must be >= 1");
  check(s[0] >= 1 && s[1] >= 1, d.where(), ": stride must be >= 1");
  check(p[0] >= 0 && p[1] >= 0, d.where(), ": padding must be >= 0");
  return {k[0], k[1], s[0], s[1], p[0], p[1]};
}

Shape Window::output(const OpDesc& d, const Shape& in, int64_t out_channels) const {
  check(in.spatial, d.where(), ": expects a [C,H,W] map, got ", in.str());
  const int64_t oh = (in.h + 2 * ph - kh) / sh + 1;
  const int64_t ow = (in.w + 2 * pw - kw) / sw + 1;
  check(in.h + 2 * ph >= kh && in.w + 2 * pw >= kw && oh >= 1 && ow >= 1, d.where(), ": kernel ",
        kh, "x", kw, " does not fit input ", in.str(), " with padding ", ph, ",", pw);
  Shape out{out_channels, oh, ow, true};
  // Checked before an op sizes anything by the output (e.g. per-pixel tables).
  check(within_limit(out), d.where(), ": output ", out.str(), " is too large (over 2^28 elements)");
  return out;
}

}  // namespace irnet
