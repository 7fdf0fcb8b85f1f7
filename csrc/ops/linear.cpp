// Fully connected layer: y = x W^T + b via SGEMM over the batch.
#include <algorithm>
#include <cstring>
#include <limits>

#include "ops/op.h"

namespace irnet {

namespace {

class Linear final : public Op {
 public:
  explicit Linear(const OpDesc& d) : Op(d) {
    in_f_ = d.int_attr("in_features");
    out_f_ = d.int_attr("out_features");
    check(in_f_ >= 1 && out_f_ >= 1, d.where(), ": feature counts must be >= 1");
  }

  Shape prepare(const std::vector<Shape>& in, const GraphDesc& g, const KernelConfig& k) override {
    expect_inputs(in, 1);
    check(!in[0].spatial && in[0].c == in_f_, desc_.where(), ": expects a [", in_f_,
          "] vector, got ", in[0].str(), " (flatten first)");
    const HostTensor& w = g.param(desc_, "weight", DType::F32, {out_f_, in_f_});
    std::vector<float> transposed(size_t(in_f_ * out_f_));  // [in][out]
    for (int64_t o = 0; o < out_f_; ++o)
      for (int64_t i = 0; i < in_f_; ++i)
        transposed[size_t(i * out_f_ + o)] = w.data<float>()[o * in_f_ + i];
    packed_ = sgemm_pack_b(size_t(in_f_), size_t(out_f_), k.sgemm.nr, transposed.data());
    ones_.assign(size_t(out_f_), 1.0f);
    bias_.assign(size_t(out_f_), 0.0f);
    if (desc_.has_param("bias"))
      std::memcpy(bias_.data(), g.param(desc_, "bias", DType::F32, {out_f_}).data<float>(),
                  sizeof(float) * size_t(out_f_));
    return Shape{out_f_, 1, 1, false};
  }

  int64_t float_macs() const override { return in_f_ * out_f_; }

  void run(const RunArgs& a) const override {
    const size_t whole_row = 0;
    constexpr int64_t kBlock = 64;  // samples per SGEMM call: their row pointers live on the stack
    const float* rows[kBlock];
    for (int64_t n0 = 0; n0 < a.batch; n0 += kBlock) {
      const int64_t count = std::min(kBlock, a.batch - n0);
      for (int64_t i = 0; i < count; ++i) rows[i] = a.in[0] + (n0 + i) * in_f_;
      const SgemmLhs lhs{rows, &whole_row, 1, size_t(in_f_)};
      // acc * 1 is exact: the output is acc + bias, as an unfused add would give.
      const SgemmOutput o{ones_.data(), bias_.data(), nullptr, -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::infinity(), a.out + n0 * out_f_, size_t(out_f_)};
      a.kernels->sgemm.run(size_t(count), size_t(out_f_), lhs, packed_.data(), o);
    }
  }

 private:
  int64_t in_f_ = 0, out_f_ = 0;
  SgemmPackedB packed_;           // weights [in][out] in the SGEMM kernel's panels
  std::vector<float> ones_, bias_;  // the output transform's mul and bias
};

}  // namespace

std::unique_ptr<Op> make_linear(const OpDesc& d) { return std::make_unique<Linear>(d); }

}  // namespace irnet
