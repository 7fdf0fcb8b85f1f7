// Inference BatchNorm on maps and vectors, rounded where PyTorch's CPU kernel rounds on an x86
// CPU with FMA (its AVX2 and AVX-512 builds contract the multiply-adds; tests/test_bn_fold.py
// checks it bit for bit): scale = weight * (1 / sqrt(var + eps)) in float,
// shift = fma(-mean, scale, bias) and y = fma(x, scale, shift), each with a single rounding.
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
      shift_[size_t(i)] = std::fma(-mean[i], scale_[size_t(i)], bias[i]);
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
        a.out[r * c + i] = std::fma(a.in[0][r * c + i], scale_[size_t(i)], shift_[size_t(i)]);
  }

 private:
  Shape shape_;
  std::vector<float> scale_, shift_;
};

}  // namespace

std::unique_ptr<Op> make_batch_norm(const OpDesc& d) { return std::make_unique<BatchNorm>(d); }

}  // namespace irnet
