// Float convolution (stems, downsample shortcuts): per-sample im2col + SGEMM, then
// out = acc * mul + bias per output channel (a following BatchNorm folds into mul and bias).
#include <cstring>

#include "ops/op.h"

namespace irnet {

namespace {

class Conv2d final : public Op {
 public:
  explicit Conv2d(const OpDesc& d) : Op(d), win_(Window::from(d)) {
    cin_ = d.int_attr("in_channels");
    cout_ = d.int_attr("out_channels");
    check(cin_ >= 1 && cout_ >= 1, d.where(), ": channel counts must be >= 1");
  }

  Shape prepare(const std::vector<Shape>& in, const GraphDesc& g, const KernelConfig& k) override {
    expect_inputs(in, 1);
    check(in[0].spatial && in[0].c == cin_, desc_.where(), ": expects ", cin_,
          " input channels, got ", in[0].str());
    in_ = in[0];
    out_ = win_.output(desc_, in_, cout_);
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
    mul_.assign(size_t(cout_), 1.0f);
    bias_.assign(size_t(cout_), 0.0f);
    if (desc_.has_param("bias")) {
      const HostTensor& b = g.param(desc_, "bias", DType::F32, {cout_});
      std::memcpy(bias_.data(), b.data<float>(), sizeof(float) * size_t(cout_));
    }
    return out_;
  }

  bool fold_affine(const std::vector<float>& scale, const std::vector<float>& shift) override {
    for (size_t o = 0; o < mul_.size(); ++o) {
      mul_[o] *= scale[o];
      bias_[o] = bias_[o] * scale[o] + shift[o];
    }
    return true;
  }

  int64_t float_macs() const override { return out_.numel() * k_; }

  void run(const RunArgs& a) const override {
    const int64_t pixels_out = out_.h * out_.w;
    const bool direct = win_.kh == 1 && win_.kw == 1 && win_.sh == 1 && win_.sw == 1 &&
                        win_.ph == 0 && win_.pw == 0;
    for (int64_t n = 0; n < a.batch; ++n) {
      const float* x = a.in[0] + n * in_.numel();
      float* y = a.out + n * out_.numel();
      std::vector<float> cols;
      if (!direct) {
        cols.assign(size_t(pixels_out * k_), 0.0f);
        im2col(x, cols.data());
        x = cols.data();
      }
      const int64_t block = 32;
      const int64_t blocks = (pixels_out + block - 1) / block;
#pragma omp parallel for num_threads(a.num_threads) schedule(static)
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t r0 = b * block, rows = std::min(block, pixels_out - r0);
        a.kernels->sgemm(size_t(rows), size_t(cout_), size_t(k_), x + r0 * k_, size_t(k_),
                         weights_.data(), size_t(cout_), y + r0 * cout_, size_t(cout_));
        for (int64_t r = r0; r < r0 + rows; ++r)
          for (int64_t o = 0; o < cout_; ++o)
            y[r * cout_ + o] = y[r * cout_ + o] * mul_[size_t(o)] + bias_[size_t(o)];
      }
    }
  }

 private:
  void im2col(const float* x, float* cols) const {
    for (int64_t oy = 0; oy < out_.h; ++oy)
      for (int64_t ox = 0; ox < out_.w; ++ox) {
        float* dst = cols + (oy * out_.w + ox) * k_;
        for (int64_t ky = 0; ky < win_.kh; ++ky) {
          const int64_t iy = oy * win_.sh - win_.ph + ky;
          if (iy < 0 || iy >= in_.h) continue;
          for (int64_t kx = 0; kx < win_.kw; ++kx) {
            const int64_t ix = ox * win_.sw - win_.pw + kx;
            if (ix < 0 || ix >= in_.w) continue;
            std::memcpy(dst + (ky * win_.kw + kx) * cin_, x + (iy * in_.w + ix) * cin_,
                        sizeof(float) * size_t(cin_));
          }
        }
      }
  }

  Window win_;
  int64_t cin_ = 0, cout_ = 0, k_ = 0;
  Shape in_, out_;
  std::vector<float> weights_;  // [kh*kw*Cin][Cout]
  std::vector<float> mul_, bias_;
};

}  // namespace

std::unique_ptr<Op> make_conv2d(const OpDesc& d) { return std::make_unique<Conv2d>(d); }

}  // namespace irnet
