// Inference BatchNorm on maps and vectors: y = x * scale + shift per channel, with
// scale = weight / sqrt(var + eps) and shift = bias - mean * scale, computed in float as
// PyTorch's CPU kernel does, so that folding it into a convolution changes no rounding step.
#include <cmath>

#include "ops/op.h"

namespace irnet {

namespace {

class BatchNorm final : public Op {
 public:
  using Op::Op;

  Shape prepare(const std::vector<Shape>& in, const GraphDesc& g, const KernelConfig& /*k*/) override {
    expect_inputs(in, 1);
    shape_ = in[0];
    const int64_t c = shape_.c;
    const float eps = float(desc_.float_attr("eps"));
    check(eps >= 0.0f, desc_.where(), ": eps must be >= 0");
    const float* mean = g.param(desc_, "mean", DType::F32, {c}).data<float>();
    const float* var = g.param(desc_, "var", DType::F32, {c}).data<float>();
    const float* weight = g.param(desc_, "weight", DType::F32, {c}).data<float>();
    const float* bias = g.param(desc_, "bias", DType::F32, {c}).data<float>();
    scale_.resize(size_t(c));
    shift_.resize(size_t(c));
    for (int64_t i = 0; i < c; ++i) {
      check(var[i] + eps > 0.0f, desc_.where(), ": var + eps must be > 0 (channel ", i, ")");
      const float invstd = 1.0f / std::sqrt(var[i] + eps);
      scale_[size_t(i)] = invstd * weight[i];
      shift_[size_t(i)] = bias[i] - mean[i] * scale_[size_t(i)];
    }
    return shape_;
  }

  bool as_affine(std::vector<float>* scale, std::vector<float>* shift) const override {
    *scale = scale_;
    *shift = shift_;
    return true;
  }

  void run(const RunArgs& a) const override {
    const int64_t c = shape_.c, rows = a.batch * shape_.h * shape_.w;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < c; ++i)
        a.out[r * c + i] = a.in[0][r * c + i] * scale_[size_t(i)] + shift_[size_t(i)];
  }

 private:
  Shape shape_;
  std::vector<float> scale_, shift_;
};

}  // namespace

std::unique_ptr<Op> make_batch_norm(const OpDesc& d) { return std::make_unique<BatchNorm>(d); }

}  // namespace irnet
