// What float and binary convolutions share: attributes and their checks, and the per-channel
// output transform y = acc * mul + bias (+ residual), clamped, that fusion builds up.
//
// Fusion order matters: a BatchNorm folds into mul/bias only while nothing follows it yet,
// because an affine map after a residual add or a clamp does not commute with them.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/op.h"

namespace irnet {

class ConvBase : public Op {
 public:
  explicit ConvBase(const OpDesc& d) : Op(d), win_(Window::from(d)) {
    cin_ = d.int_attr("in_channels");
    cout_ = d.int_attr("out_channels");
    check(cin_ >= 1 && cout_ >= 1, d.where(), ": channel counts must be >= 1");
  }

  // Folded only where it is within one rounding of PyTorch: PyTorch computes
  // fma(acc * m + b, scale, shift), the fold acc * (m * scale) + (b * scale + shift). With
  // m a power of two (1 for a float conv, 2^shift for a binary one, or 0) and b = 0, m * scale
  // is exact and b * scale + shift is shift. The binary epilogue's fma then rounds as
  // PyTorch does, bit for bit (kernels/bgemm.h); the float one (kernels/sgemm.h) multiplies,
  // then adds, on sums PyTorch orders differently anyway. A conv bias, or a
  // second BatchNorm after a first one folded a non-power-of-two scale, keeps the batch_norm
  // as its own op. Refused too when a folded value would not be a finite normal float:
  // 2^100 * 1e10 overflows to inf, and inf * a dot of 0 is NaN where PyTorch computes
  // 0 * scale; a subnormal product would round where PyTorch's two steps do not.
  bool fold_affine(const std::vector<float>& scale, const std::vector<float>& shift) override {
    if (residual_ || clamped_) return false;
    for (size_t o = 0; o < mul_.size(); ++o) {
      int exponent = 0;
      const bool power_of_two = mul_[o] == 0.0f || std::fabs(std::frexp(mul_[o], &exponent)) == 0.5f;
      if (bias_[o] != 0.0f || !power_of_two) return false;
    }
    std::vector<float> mul(mul_), bias(bias_);
    for (size_t o = 0; o < mul.size(); ++o) {
      mul[o] *= scale[o];
      bias[o] = shift[o];
      const bool exact_zero = mul[o] == 0.0f && (mul_[o] == 0.0f || scale[o] == 0.0f);
      if (!(std::isnormal(mul[o]) || exact_zero) || !std::isfinite(bias[o])) return false;
    }
    mul_.swap(mul);
    bias_.swap(bias);
    return true;
  }
  bool can_fuse_residual() const override { return !residual_ && !clamped_; }
  bool fuse_residual() override {
    if (!can_fuse_residual()) return false;
    residual_ = true;
    return true;
  }
  bool fuse_clamp(float lo, float hi) override {
    if (clamped_) return false;
    lo_ = lo;
    hi_ = hi;
    clamped_ = true;
    return true;
  }

 protected:
  // How a run is split for OpenMP: tasks are (sample, block of output pixels, group of the
  // kernel's nr-wide output-channel panels), with enough channel groups that small maps
  // (7x7 is a single pixel block) still give every thread work. Blocks are at most kRowBlock
  // pixels, all about the same size, and as many per batch as a multiple of the threads (a
  // 28x28 map is 14 blocks of 56, not 12 of 64 and one of 16, which would leave 2 threads at
  // 448 vs 336 pixels); or what the op asks for (the float conv: one output row).
  struct Tasks {
    static constexpr int64_t kRowBlock = 64;
    int64_t pixels, block, blocks, groups, cols_per_group, cout;
    Tasks(int64_t batch, int64_t pixels_out, int64_t cout_, size_t nr, int threads, int64_t row_block = 0)
        : pixels(pixels_out), cout(cout_) {
      if (row_block > 0) {
        block = row_block;
      } else {
        int64_t n = (pixels + kRowBlock - 1) / kRowBlock;
        while ((batch * n) % threads != 0 && n < pixels) ++n;
        block = (pixels + n - 1) / n;
      }
      blocks = (pixels + block - 1) / block;
      const int64_t panels = (cout + int64_t(nr) - 1) / int64_t(nr), row_tasks = batch * blocks;
      groups = std::min(panels, std::max<int64_t>(1, (4 * threads + row_tasks - 1) / row_tasks));
      cols_per_group = (panels + groups - 1) / groups * int64_t(nr);
      count = row_tasks * groups;
    }
    int64_t count;
    struct Task { int64_t n, p0, rows, j0, j1; };
    Task operator[](int64_t task) const {
      const int64_t t = task / groups, j0 = (task % groups) * cols_per_group;
      const int64_t p0 = (t % blocks) * block;
      return {t / blocks, p0, std::min(block, pixels - p0), j0, std::min(cout, j0 + cols_per_group)};
    }
  };

  // Threads worth starting for `work` MACs: waking a thread costs about as much as a few
  // million binary MACs, so the small CIFAR layers run on fewer threads than asked.
  static int threads_for(int requested, int64_t work) {
    constexpr int64_t kMacsPerThread = int64_t(4) << 20;
    return int(std::max<int64_t>(1, std::min<int64_t>(requested, work / kMacsPerThread)));
  }

  // Checks the input map and sets in_ / out_.
  void take_input(const std::vector<Shape>& in) {
    expect_inputs(in, 1);
    check(in[0].spatial && in[0].c == cin_, desc_.where(), ": expects ", cin_,
          " input channels, got ", in[0].str());
    in_ = in[0];
    out_ = win_.output(desc_, in_, cout_);
  }
  // mul = `mul`, bias = the optional `bias` parameter (else 0).
  void init_transform(const GraphDesc& g, std::vector<float> mul) {
    mul_ = std::move(mul);
    bias_.assign(size_t(cout_), 0.0f);
    if (desc_.has_param("bias"))
      std::memcpy(bias_.data(), g.param(desc_, "bias", DType::F32, {cout_}).data<float>(),
                  sizeof(float) * size_t(cout_));
  }

  Window win_;
  int64_t cin_ = 0, cout_ = 0;
  Shape in_, out_;
  std::vector<float> mul_, bias_;  // per output channel
  bool residual_ = false, clamped_ = false;
  float lo_ = -std::numeric_limits<float>::infinity(), hi_ = std::numeric_limits<float>::infinity();
};

}  // namespace irnet
