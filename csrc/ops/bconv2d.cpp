// Binary convolution: sign + bit-pack the input, bit-packed im2col, binary GEMM (XOR + popcount),
// then the output transform out = dot * mul + bias per output channel.
//
// Zero padding is exact: padded taps are packed as +1 (bits 0), which adds the sum of that tap's
// weights to the dot product; border pixels subtract those precomputed per-(channel, tap) sums.
#include <cmath>
#include <cstring>

#include "ops/op.h"

namespace irnet {

namespace {

class BConv2d final : public Op {
 public:
  explicit BConv2d(const OpDesc& d) : Op(d), win_(Window::from(d)) {
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
    words_ = int64_t(words_for(cin_));
    taps_ = win_.kh * win_.kw;
    k_words_ = checked_mul(taps_, words_, "kernel");
    const HostTensor& wt =
        g.param(desc_, "weight_bits", DType::U64, {cout_, win_.kh, win_.kw, words_});
    const HostTensor& sh = g.param(desc_, "shift", DType::I8, {cout_});
    weights_.assign(wt.data<uint64_t>(), wt.data<uint64_t>() + cout_ * k_words_);
    // Tail bits beyond Cin must be 0, or they would count as products that do not exist.
    const uint64_t tail = cin_ % 64 ? ~uint64_t(0) << (cin_ % 64) : 0;
    tap_sum_.resize(size_t(cout_ * taps_));
    for (int64_t o = 0; o < cout_; ++o)
      for (int64_t t = 0; t < taps_; ++t) {
        int64_t neg = 0;
        for (int64_t w = 0; w < words_; ++w) {
          const uint64_t bits = weights_[size_t((o * taps_ + t) * words_ + w)];
          check(w != words_ - 1 || (bits & tail) == 0, desc_.where(),
                ": weight_bits has bits set beyond in_channels");
          neg += __builtin_popcountll(bits);
        }
        tap_sum_[size_t(o * taps_ + t)] = int32_t(cin_ - 2 * neg);
      }
    mul_.resize(size_t(cout_));
    bias_.assign(size_t(cout_), 0.0f);
    for (int64_t o = 0; o < cout_; ++o) mul_[size_t(o)] = std::ldexp(1.0f, sh.data<int8_t>()[o]);
    if (desc_.has_param("bias")) {
      const HostTensor& b = g.param(desc_, "bias", DType::F32, {cout_});
      std::memcpy(bias_.data(), b.data<float>(), sizeof(float) * size_t(cout_));
    }
    packed_ = bgemm_pack_b(size_t(cout_), size_t(k_words_), k.bgemm.nr, weights_.data());
    return out_;
  }

  bool fold_affine(const std::vector<float>& scale, const std::vector<float>& shift) override {
    for (size_t o = 0; o < mul_.size(); ++o) {
      mul_[o] *= scale[o];  // exact: mul_ is still a power of two here
      bias_[o] = bias_[o] * scale[o] + shift[o];
    }
    return true;
  }

  int64_t binary_macs() const override { return out_.numel() * taps_ * cin_; }

  void run(const RunArgs& a) const override {
    const KernelConfig& k = *a.kernels;
    const int64_t pixels_in = in_.h * in_.w, pixels_out = out_.h * out_.w;
    const int64_t m = a.batch * pixels_out;
    std::vector<uint64_t> packed(size_t(a.batch * pixels_in * words_));
    k.bitpack(a.in[0], size_t(a.batch * pixels_in), size_t(cin_), packed.data());

    const bool direct = taps_ == 1 && win_.sh == 1 && win_.sw == 1 && win_.ph == 0 && win_.pw == 0;
    std::vector<uint64_t> cols;
    const uint64_t* lhs = packed.data();
    if (!direct) {
      cols.assign(size_t(m * k_words_), 0);
      im2col(packed.data(), a.batch, cols.data());
      lhs = cols.data();
    }
    std::vector<int32_t> count(size_t(m * cout_));
    const int64_t block = 64;
    const int64_t blocks = (m + block - 1) / block;
#pragma omp parallel for num_threads(a.num_threads) schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * block, rows = std::min(block, m - r0);
      k.bgemm.run(size_t(rows), size_t(cout_), size_t(k_words_), lhs + r0 * k_words_,
                  size_t(k_words_), packed_.data(), count.data() + r0 * cout_, size_t(cout_));
      transform(count.data(), r0, rows, a.out);
    }
  }

 private:
  // Gathers each output pixel's taps (words_ words each); padded taps stay 0 (= +1).
  void im2col(const uint64_t* packed, int64_t batch, uint64_t* cols) const {
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t oy = 0; oy < out_.h; ++oy)
        for (int64_t ox = 0; ox < out_.w; ++ox) {
          uint64_t* dst = cols + ((n * out_.h + oy) * out_.w + ox) * k_words_;
          for (int64_t ky = 0; ky < win_.kh; ++ky) {
            const int64_t iy = oy * win_.sh - win_.ph + ky;
            for (int64_t kx = 0; kx < win_.kw; ++kx) {
              const int64_t ix = ox * win_.sw - win_.pw + kx;
              if (iy < 0 || iy >= in_.h || ix < 0 || ix >= in_.w) continue;
              std::memcpy(dst + (ky * win_.kw + kx) * words_,
                          packed + ((n * in_.h + iy) * in_.w + ix) * words_,
                          sizeof(uint64_t) * size_t(words_));
            }
          }
        }
  }

  // count -> dot (with padding correction) -> dot * mul + bias, for rows [r0, r0 + rows).
  void transform(const int32_t* count, int64_t r0, int64_t rows, float* out) const {
    const int32_t k_bits = int32_t(taps_ * cin_);
    const int64_t pixels_out = out_.h * out_.w;
    for (int64_t r = r0; r < r0 + rows; ++r) {
      const int64_t p = r % pixels_out, oy = p / out_.w, ox = p % out_.w;
      const int64_t y0 = oy * win_.sh - win_.ph, x0 = ox * win_.sw - win_.pw;
      const bool border = y0 < 0 || x0 < 0 || y0 + win_.kh > in_.h || x0 + win_.kw > in_.w;
      for (int64_t o = 0; o < cout_; ++o) {
        int32_t dot = k_bits - 2 * count[r * cout_ + o];
        if (border) dot -= padded_tap_sum(o, y0, x0);
        out[r * cout_ + o] = float(dot) * mul_[size_t(o)] + bias_[size_t(o)];
      }
    }
  }

  int32_t padded_tap_sum(int64_t o, int64_t y0, int64_t x0) const {
    int32_t s = 0;
    for (int64_t ky = 0; ky < win_.kh; ++ky)
      for (int64_t kx = 0; kx < win_.kw; ++kx) {
        const int64_t iy = y0 + ky, ix = x0 + kx;
        if (iy < 0 || iy >= in_.h || ix < 0 || ix >= in_.w)
          s += tap_sum_[size_t(o * taps_ + ky * win_.kw + kx)];
      }
    return s;
  }

  Window win_;
  int64_t cin_ = 0, cout_ = 0, words_ = 0, taps_ = 0, k_words_ = 0;
  Shape in_, out_;
  std::vector<uint64_t> weights_;  // [Cout][kh][kw][words], as in the file
  std::vector<uint64_t> packed_;   // the same, in the GEMM kernel's panels
  std::vector<int32_t> tap_sum_;   // [Cout][kh*kw]: sum of +/-1 weights of each tap
  std::vector<float> mul_, bias_;  // per output channel
};

}  // namespace

std::unique_ptr<Op> make_bconv2d(const OpDesc& d) { return std::make_unique<BConv2d>(d); }

}  // namespace irnet
