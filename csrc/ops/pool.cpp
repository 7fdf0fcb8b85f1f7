// Pooling on NHWC maps: max, average (PyTorch's floor mode and divisor rules), global average.
#include <algorithm>
#include <limits>

#include "ops/op.h"

namespace irnet {

namespace {

class Pool2d final : public Op {
 public:
  Pool2d(const OpDesc& d, bool is_max) : Op(d), win_(Window::from(d)), max_(is_max) {
    check(win_.ph * 2 <= win_.kh && win_.pw * 2 <= win_.kw, d.where(),
          ": padding must be at most half the kernel size");
    if (!is_max) include_pad_ = d.int_attr("count_include_pad") != 0;
  }
  Shape prepare(const std::vector<Shape>& in, const GraphDesc&, const KernelConfig&) override {
    expect_inputs(in, 1);
    in_ = in[0];
    out_ = win_.output(desc_, in_, in_.c);
    return out_;
  }
  void run(const RunArgs& a) const override {
    const int64_t c = in_.c;
    for (int64_t n = 0; n < a.batch; ++n)
      for (int64_t oy = 0; oy < out_.h; ++oy)
        for (int64_t ox = 0; ox < out_.w; ++ox) {
          const int64_t y0 = oy * win_.sh - win_.ph, x0 = ox * win_.sw - win_.pw;
          const int64_t y1 = std::min(y0 + win_.kh, in_.h), x1 = std::min(x0 + win_.kw, in_.w);
          const int64_t ys = std::max<int64_t>(y0, 0), xs = std::max<int64_t>(x0, 0);
          float* dst = a.out + ((n * out_.h + oy) * out_.w + ox) * c;
          std::fill(dst, dst + c, max_ ? -std::numeric_limits<float>::infinity() : 0.0f);
          for (int64_t y = ys; y < y1; ++y)
            for (int64_t x = xs; x < x1; ++x) {
              const float* src = a.in[0] + ((n * in_.h + y) * in_.w + x) * c;
              if (max_)
                for (int64_t i = 0; i < c; ++i) dst[i] = src[i] > dst[i] ? src[i] : dst[i];
              else
                for (int64_t i = 0; i < c; ++i) dst[i] += src[i];
            }
          if (!max_) {
            // PyTorch: the divisor counts padded cells inside [−pad, size + pad) when
            // count_include_pad, else only real cells.
            const int64_t ph1 = std::min(y0 + win_.kh, in_.h + win_.ph);
            const int64_t pw1 = std::min(x0 + win_.kw, in_.w + win_.pw);
            const int64_t count = include_pad_ ? (ph1 - y0) * (pw1 - x0) : (y1 - ys) * (x1 - xs);
            for (int64_t i = 0; i < c; ++i) dst[i] /= float(count);
          }
        }
  }

 private:
  Window win_;
  bool max_;
  bool include_pad_ = true;
  Shape in_, out_;
};

class GlobalAvgPool final : public Op {
 public:
  using Op::Op;
  Shape prepare(const std::vector<Shape>& in, const GraphDesc&, const KernelConfig&) override {
    expect_inputs(in, 1);
    check(in[0].spatial, desc_.where(), ": expects a [C,H,W] map, got ", in[0].str());
    in_ = in[0];
    return Shape{in_.c, 1, 1, true};
  }
  void run(const RunArgs& a) const override {
    const int64_t c = in_.c, pixels = in_.h * in_.w;
    for (int64_t n = 0; n < a.batch; ++n) {
      float* dst = a.out + n * c;
      std::fill(dst, dst + c, 0.0f);
      for (int64_t p = 0; p < pixels; ++p)
        for (int64_t i = 0; i < c; ++i) dst[i] += a.in[0][(n * pixels + p) * c + i];
      for (int64_t i = 0; i < c; ++i) dst[i] /= float(pixels);
    }
  }

 private:
  Shape in_;
};

}  // namespace

std::unique_ptr<Op> make_max_pool2d(const OpDesc& d) { return std::make_unique<Pool2d>(d, true); }
std::unique_ptr<Op> make_avg_pool2d(const OpDesc& d) { return std::make_unique<Pool2d>(d, false); }
std::unique_ptr<Op> make_global_avg_pool(const OpDesc& d) {
  return std::make_unique<GlobalAvgPool>(d);
}

}  // namespace irnet
