// Float convolution (stems, downsample shortcuts): im2col of a block of output pixels + SGEMM,
// then out = acc * mul + bias per output channel (a following BatchNorm folds into mul and
// bias), with an optional residual add and clamp, while the block is still in cache.
#include <algorithm>

#include "ops/conv_base.h"
#include "ops/parallel.h"
#include "ops/scratch.h"

namespace irnet {

namespace {


class Conv2d final : public ConvBase {
 public:
  using ConvBase::ConvBase;

  Shape prepare(const std::vector<Shape>& in, const GraphDesc& g, const KernelConfig& k) override {
    take_input(in);
    k_ = checked_mul(win_.kh * win_.kw, cin_, "kernel");
    const HostTensor& w = g.param(desc_, "weight", DType::F32, {cout_, cin_, win_.kh, win_.kw});
    // OIHW -> [(ky, kx, c)][o], the row order of the NHWC im2col below.
    weights_.resize(size_t(k_ * cout_));
    const float* src = w.data<float>();
    for (int64_t o = 0; o < cout_; ++o)
      for (int64_t c = 0; c < cin_; ++c)
        for (int64_t ky = 0; ky < win_.kh; ++ky)
          for (int64_t kx = 0; kx < win_.kw; ++kx)
            weights_[size_t(((ky * win_.kw + kx) * cin_ + c) * cout_ + o)] =
                src[((o * cin_ + c) * win_.kh + ky) * win_.kw + kx];
    packed_ = sgemm_pack_b(size_t(k_), size_t(cout_), k.sgemm.nr, weights_.data());
    weights_ = std::vector<float>();
    init_transform(g, std::vector<float>(size_t(cout_), 1.0f));
    return out_;
  }

  int64_t float_macs() const override { return out_.numel() * k_; }

  void run(const RunArgs& a) const override {
    const int64_t pixels_out = out_.h * out_.w;
    const bool direct = win_.kh == 1 && win_.kw == 1 && win_.sh == 1 && win_.sw == 1 &&
                        win_.ph == 0 && win_.pw == 0;
    // Float MACs cost about 10 binary ones.
    const int threads = threads_for(a.num_threads, 10 * a.batch * float_macs());
    const Tasks tasks(a.batch, pixels_out, cout_, a.kernels->sgemm.nr, threads);
    parallel_region(threads, [&] {
#pragma omp for schedule(static)
      for (int64_t task = 0; task < tasks.count; ++task) {
        const auto [n, p0, rows, j0, j1] = tasks[task];
        if (j0 >= j1) continue;
        const float* x = a.in[0] + n * in_.numel();
        const float* lhs = x + p0 * k_;
        if (!direct) {
          float* cols = thread_scratch<float>(size_t(rows * k_), 1);
          im2col(x, p0, rows, cols);
          lhs = cols;
        }
        const int64_t row0 = n * pixels_out + p0;
        float* y = a.out + row0 * cout_;
        a.kernels->sgemm.run(size_t(rows), size_t(j1 - j0), size_t(k_), lhs, size_t(k_),
                             packed_.data() + j0 * k_, y + j0, size_t(cout_));
        const float* res = residual_ ? a.in[1] + row0 * cout_ : nullptr;
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t o = j0; o < j1; ++o) {
            float v = y[r * cout_ + o] * mul_[size_t(o)] + bias_[size_t(o)];
            if (res) v += res[r * cout_ + o];
            y[r * cout_ + o] = v < lo_ ? lo_ : (v > hi_ ? hi_ : v);
          }
      }
    });
  }

 private:
  // Rows [p0, p0 + rows) of the im2col matrix of one sample; padded taps are 0. Within a
  // kernel row, the in-bounds taps are contiguous in NHWC, so each is one copy.
  void im2col(const float* x, int64_t p0, int64_t rows, float* cols) const {
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t oy = (p0 + r) / out_.w, ox = (p0 + r) % out_.w;
      float* dst = cols + r * k_;
      const int64_t x0 = ox * win_.sw - win_.pw;
      const int64_t kx0 = std::max<int64_t>(0, -x0), kx1 = std::min(win_.kw, in_.w - x0);
      for (int64_t ky = 0; ky < win_.kh; ++ky) {
        float* row = dst + ky * win_.kw * cin_;
        const int64_t iy = oy * win_.sh - win_.ph + ky;
        if (iy < 0 || iy >= in_.h || kx1 <= kx0) {
          std::fill(row, row + win_.kw * cin_, 0.0f);
          continue;
        }
        std::fill(row, row + kx0 * cin_, 0.0f);
        std::copy(x + (iy * in_.w + x0 + kx0) * cin_, x + (iy * in_.w + x0 + kx1) * cin_, row + kx0 * cin_);
        std::fill(row + kx1 * cin_, row + win_.kw * cin_, 0.0f);
      }
    }
  }

  int64_t k_ = 0;
  std::vector<float> weights_;  // [kh*kw*Cin][Cout], only while preparing
  std::vector<float> packed_;   // the same, in the SGEMM kernel's panels
};

}  // namespace

std::unique_ptr<Op> make_conv2d(const OpDesc& d) { return std::make_unique<Conv2d>(d); }

}  // namespace irnet
