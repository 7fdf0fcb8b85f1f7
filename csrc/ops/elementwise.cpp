// Element-wise ops: relu, hardtanh (clamp) and add.
#include <algorithm>
#include <limits>

#include "ops/op.h"

namespace irnet {

namespace {

class Clamp final : public Op {
 public:
  Clamp(const OpDesc& d, bool relu) : Op(d) {
    if (relu) return;
    lo_ = float(d.float_attr("min_val"));
    hi_ = float(d.float_attr("max_val"));
    check(lo_ <= hi_, d.where(), ": min_val must be <= max_val");
  }
  Shape prepare(const std::vector<Shape>& in, const GraphDesc&, const KernelConfig&) override {
    expect_inputs(in, 1);
    shape_ = in[0];
    return shape_;
  }
  bool as_clamp(float* lo, float* hi) const override {
    *lo = lo_;
    *hi = hi_;
    return true;
  }
  void run(const RunArgs& a) const override {
    const int64_t n = a.batch * shape_.numel();
    // NaN stays NaN here, as in PyTorch (comparisons with NaN are false).
    for (int64_t i = 0; i < n; ++i) {
      const float x = a.in[0][i];
      a.out[i] = x < lo_ ? lo_ : (x > hi_ ? hi_ : x);
    }
  }

 private:
  Shape shape_;
  float lo_ = 0.0f, hi_ = std::numeric_limits<float>::infinity();  // relu by default
};

class Add final : public Op {
 public:
  using Op::Op;
  Shape prepare(const std::vector<Shape>& in, const GraphDesc&, const KernelConfig&) override {
    expect_inputs(in, 2);
    check(in[0] == in[1], desc_.where(), ": input shapes differ: ", in[0].str(), " and ",
          in[1].str());
    shape_ = in[0];
    return shape_;
  }
  bool is_sum() const override { return true; }
  void run(const RunArgs& a) const override {
    const int64_t n = a.batch * shape_.numel();
    for (int64_t i = 0; i < n; ++i) a.out[i] = a.in[0][i] + a.in[1][i];
  }

 private:
  Shape shape_;
};

}  // namespace

std::unique_ptr<Op> make_relu(const OpDesc& d) { return std::make_unique<Clamp>(d, true); }
std::unique_ptr<Op> make_hardtanh(const OpDesc& d) { return std::make_unique<Clamp>(d, false); }
std::unique_ptr<Op> make_add(const OpDesc& d) { return std::make_unique<Add>(d); }

}  // namespace irnet
