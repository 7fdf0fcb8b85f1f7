// log_softmax over a vector, with the max subtracted first so large logits do not overflow.
#include <cmath>

#include "ops/op.h"

namespace irnet {

namespace {

class LogSoftmax final : public Op {
 public:
  using Op::Op;
  Shape prepare(const std::vector<Shape>& in, const GraphDesc&, const KernelConfig&) override {
    expect_inputs(in, 1);
    check(!in[0].spatial, desc_.where(), ": expects a vector, got ", in[0].str());
    shape_ = in[0];
    return shape_;
  }
  void run(const RunArgs& a) const override {
    const int64_t c = shape_.c;
    for (int64_t n = 0; n < a.batch; ++n) {
      const float* x = a.in[0] + n * c;
      float* y = a.out + n * c;
      float m = x[0];
      for (int64_t i = 1; i < c; ++i) m = std::max(m, x[i]);
      double sum = 0.0;
      for (int64_t i = 0; i < c; ++i) sum += std::exp(double(x[i] - m));
      const float lse = float(std::log(sum));
      for (int64_t i = 0; i < c; ++i) y[i] = x[i] - m - lse;
    }
  }

 private:
  Shape shape_;
};

}  // namespace

std::unique_ptr<Op> make_log_softmax(const OpDesc& d) { return std::make_unique<LogSoftmax>(d); }

}  // namespace irnet
