// Ops that move data without arithmetic: flatten (NHWC storage -> PyTorch's C,H,W order)
// and the ResNet option-A shortcut (subsample, then zero channels on both sides).
#include <algorithm>

#include "ops/op.h"

namespace irnet {

namespace {

class Flatten final : public Op {
 public:
  using Op::Op;
  Shape prepare(const std::vector<Shape>& in, const GraphDesc&, const KernelConfig&) override {
    expect_inputs(in, 1);
    in_ = in[0];
    return Shape{in_.numel(), 1, 1, false};
  }
  void run(const RunArgs& a) const override {
    const int64_t c = in_.c, h = in_.h, w = in_.w, size = in_.numel();
    for (int64_t n = 0; n < a.batch; ++n)
      for (int64_t i = 0; i < c; ++i)
        for (int64_t y = 0; y < h; ++y)
          for (int64_t x = 0; x < w; ++x)
            a.out[n * size + (i * h + y) * w + x] = a.in[0][n * size + (y * w + x) * c + i];
  }

 private:
  Shape in_;
};

class ShortcutA final : public Op {
 public:
  explicit ShortcutA(const OpDesc& d) : Op(d) {
    stride_ = d.int_attr("stride");
    before_ = d.int_attr("pad_before");
    after_ = d.int_attr("pad_after");
    check(stride_ >= 1, d.where(), ": stride must be >= 1");
    check(before_ >= 0 && after_ >= 0, d.where(), ": channel padding must be >= 0");
  }
  Shape prepare(const std::vector<Shape>& in, const GraphDesc&, const KernelConfig&) override {
    expect_inputs(in, 1);
    check(in[0].spatial, desc_.where(), ": expects a [C,H,W] map, got ", in[0].str());
    in_ = in[0];
    out_ = Shape{in_.c + before_ + after_, (in_.h + stride_ - 1) / stride_,
                 (in_.w + stride_ - 1) / stride_, true};
    check(within_limit(out_), desc_.where(), ": output ", out_.str(), " is too large (over 2^28 elements)");
    return out_;
  }
  void run(const RunArgs& a) const override {
    for (int64_t n = 0; n < a.batch; ++n)
      for (int64_t y = 0; y < out_.h; ++y)
        for (int64_t x = 0; x < out_.w; ++x) {
          float* dst = a.out + ((n * out_.h + y) * out_.w + x) * out_.c;
          const float* src =
              a.in[0] + ((n * in_.h + y * stride_) * in_.w + x * stride_) * in_.c;
          std::fill(dst, dst + before_, 0.0f);
          std::copy(src, src + in_.c, dst + before_);
          std::fill(dst + before_ + in_.c, dst + out_.c, 0.0f);
        }
  }

 private:
  int64_t stride_ = 2, before_ = 0, after_ = 0;
  Shape in_, out_;
};

}  // namespace

std::unique_ptr<Op> make_flatten(const OpDesc& d) { return std::make_unique<Flatten>(d); }
std::unique_ptr<Op> make_shortcut_a(const OpDesc& d) { return std::make_unique<ShortcutA>(d); }

}  // namespace irnet
