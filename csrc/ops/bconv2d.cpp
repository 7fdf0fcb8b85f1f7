// Binary convolution: sign + bit-pack the input, bit-packed im2col, then a binary GEMM
// (XOR + popcount) whose epilogue applies the output transform.
//
// The arithmetic, derived once:
//  - With K = kh*kw*Cin products of +/-1 values, dot = K - 2 * popcount(a XOR w).
//  - IR-Net's weight is sign(w_std) * 2^shift, so conv = dot * 2^shift exactly.
//  - A BatchNorm that follows is y * scale + shift' (scale = gamma/sqrt(var+eps)); folding gives
//    mul = 2^shift * scale (exact: a power-of-two multiply) and bias = b * scale + shift', so the
//    engine rounds exactly where PyTorch rounds: once in the multiply, once in the add.
//  - Zero padding is exact: padded taps are packed as +1 (bits 0), which adds that tap's weight
//    sum to the dot; border pixels subtract those sums (one correction vector per border class).
//  - A following residual add and hardtanh/relu run in the same epilogue.
//  - Layers with fewer than 64 input channels (the CIFAR networks' 16 and 32) pack the taps
//    back to back (tap t at bit t * Cin) instead of one word per tap, so a 3x3 layer with 16
//    channels needs 3 words per pixel instead of 9. Weights are repacked the same way.
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "ops/conv_base.h"
#include "ops/scratch.h"

namespace irnet {

namespace {

class BConv2d final : public ConvBase {
 public:
  using ConvBase::ConvBase;

  Shape prepare(const std::vector<Shape>& in, const GraphDesc& g, const KernelConfig& k) override {
    take_input(in);
    words_ = int64_t(words_for(size_t(cin_)));
    taps_ = win_.kh * win_.kw;
    tap_bits_ = cin_ < 64 ? cin_ : words_ * 64;
    k_words_ = (checked_mul(taps_, tap_bits_, "kernel") + 63) / 64;
    check(checked_mul(taps_, cin_, "kernel") < (int64_t(1) << 24), desc_.where(),
          ": kernel too large for exact float output");
    const HostTensor& wt = g.param(desc_, "weight_bits", DType::U64, {cout_, win_.kh, win_.kw, words_});
    const HostTensor& sh = g.param(desc_, "shift", DType::I8, {cout_});
    const uint64_t* w = wt.data<uint64_t>();
    // Tail bits beyond Cin must be 0, or they would count as products that do not exist.
    const uint64_t tail = cin_ % 64 ? ~uint64_t(0) << (cin_ % 64) : 0;
    std::vector<int32_t> tap_sum(size_t(cout_ * taps_));
    for (int64_t o = 0; o < cout_; ++o)
      for (int64_t t = 0; t < taps_; ++t) {
        int64_t neg = 0;
        for (int64_t i = 0; i < words_; ++i) {
          const uint64_t bits = w[(o * taps_ + t) * words_ + i];
          check(i != words_ - 1 || (bits & tail) == 0, desc_.where(),
                ": weight_bits has bits set beyond in_channels");
          neg += __builtin_popcountll(bits);
        }
        tap_sum[size_t(o * taps_ + t)] = int32_t(cin_ - 2 * neg);
      }
    build_corrections(tap_sum);
    std::vector<uint64_t> rows(size_t(cout_ * k_words_), 0);
    for (int64_t o = 0; o < cout_; ++o)
      for (int64_t t = 0; t < taps_; ++t)
        put_tap(rows.data() + o * k_words_, t, w + (o * taps_ + t) * words_);
    packed_ = bgemm_pack_b(size_t(cout_), size_t(k_words_), k.bgemm.nr, rows.data());
    std::vector<float> mul(static_cast<size_t>(cout_));
    for (int64_t o = 0; o < cout_; ++o) {
      const int s = sh.data<int8_t>()[o];
      check(s >= -100 && s <= 100, desc_.where(), ": shift ", s, " is out of range -100..100");
      mul[size_t(o)] = std::ldexp(1.0f, s);
    }
    init_transform(g, std::move(mul));
    return out_;
  }

  int64_t binary_macs() const override { return out_.numel() * taps_ * cin_; }

  void run(const RunArgs& a) const override {
    const KernelConfig& k = *a.kernels;
    const int64_t pixels_in = in_.h * in_.w, pixels_out = out_.h * out_.w;
    const int64_t rows_in = a.batch * pixels_in;
    uint64_t* packed = thread_scratch<uint64_t>(size_t(rows_in * words_));
    const int threads = threads_for(a.num_threads, a.batch * binary_macs());
    const bool direct = taps_ == 1 && win_.sh == 1 && win_.sw == 1 && !has_padding_;  // A = input
#pragma omp parallel num_threads(threads)
    {
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows_in; r += 256)
        k.bitpack(a.in[0] + r * cin_, size_t(std::min<int64_t>(256, rows_in - r)), size_t(cin_),
                  packed + r * words_);
      const Tasks tasks(a.batch, pixels_out, cout_, k.bgemm.nr, threads);
#pragma omp for schedule(static)
      for (int64_t task = 0; task < tasks.count; ++task) {
        const auto [n, p0, rows, j0, j1] = tasks[task];
        if (j0 >= j1) continue;
        const uint64_t* lhs = packed + (n * pixels_in + p0) * words_;
        if (!direct) {
          uint64_t* cols = thread_scratch<uint64_t>(size_t(rows * k_words_), 1);
          im2col(packed + n * pixels_in * words_, p0, rows, cols);
          lhs = cols;
        }
        const int64_t out_row = n * pixels_out + p0;
        const BgemmOutput o{int32_t(taps_ * cin_), mul_.data(), bias_.data(),
                            has_padding_ ? pixel_correction_.data() + p0 : nullptr,
                            residual_ ? a.in[1] + out_row * cout_ : nullptr,
                            lo_, hi_, a.out + out_row * cout_, size_t(cout_), size_t(j0)};
        k.bgemm.run(size_t(rows), size_t(j1 - j0), size_t(k_words_), lhs, size_t(k_words_),
                    packed_.data() + j0 * k_words_, o);
      }
    }
  }

 private:
  // Output pixel -> correction vector of its padded taps (null for interior pixels).
  void build_corrections(const std::vector<int32_t>& tap_sum) {
    const int64_t pixels_out = out_.h * out_.w;
    pixel_correction_.assign(size_t(pixels_out), nullptr);
    std::map<std::vector<bool>, size_t> classes;
    std::vector<size_t> class_of(size_t(pixels_out), SIZE_MAX);
    for (int64_t p = 0; p < pixels_out; ++p) {
      const int64_t y0 = (p / out_.w) * win_.sh - win_.ph, x0 = (p % out_.w) * win_.sw - win_.pw;
      std::vector<bool> padded(static_cast<size_t>(taps_), false);
      bool any = false;
      for (int64_t ky = 0; ky < win_.kh; ++ky)
        for (int64_t kx = 0; kx < win_.kw; ++kx) {
          const int64_t iy = y0 + ky, ix = x0 + kx;
          const bool pad = iy < 0 || iy >= in_.h || ix < 0 || ix >= in_.w;
          padded[size_t(ky * win_.kw + kx)] = pad;
          any = any || pad;
        }
      if (!any) continue;
      auto it = classes.find(padded);
      if (it == classes.end()) {
        it = classes.emplace(padded, corrections_.size()).first;
        std::vector<int32_t> c(size_t(cout_), 0);
        for (int64_t o = 0; o < cout_; ++o)
          for (int64_t t = 0; t < taps_; ++t)
            if (padded[size_t(t)]) c[size_t(o)] += tap_sum[size_t(o * taps_ + t)];
        corrections_.push_back(std::move(c));
      }
      class_of[size_t(p)] = it->second;
    }
    has_padding_ = !corrections_.empty();
    for (int64_t p = 0; p < pixels_out; ++p)
      if (class_of[size_t(p)] != SIZE_MAX) pixel_correction_[size_t(p)] = corrections_[class_of[size_t(p)]].data();
  }

  // Writes one tap's packed channels (words_ words) at bit t * tap_bits_ of a zeroed row.
  void put_tap(uint64_t* row, int64_t t, const uint64_t* src) const {
    if (tap_bits_ % 64 == 0) {
      for (int64_t w = 0; w < words_; ++w) row[t * words_ + w] = src[w];
      return;
    }
    const int64_t bit = t * tap_bits_, word = bit / 64, shift = bit % 64;  // tap_bits_ < 64
    row[word] |= src[0] << shift;
    if (shift + tap_bits_ > 64) row[word + 1] |= src[0] >> (64 - shift);
  }

  // Gathers the taps of output pixels [p0, p0 + rows) of one sample; padded taps stay 0 (= +1).
  void im2col(const uint64_t* packed, int64_t p0, int64_t rows, uint64_t* cols) const {
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t p = p0 + r, oy = p / out_.w, ox = p % out_.w;
      uint64_t* dst = cols + r * k_words_;
      for (int64_t w = 0; w < k_words_; ++w) dst[w] = 0;
      const int64_t y0 = oy * win_.sh - win_.ph, x0 = ox * win_.sw - win_.pw;
      if (y0 >= 0 && x0 >= 0 && y0 + win_.kh <= in_.h && x0 + win_.kw <= in_.w) {
        // Interior pixel (most of them): no bounds checks.
        for (int64_t ky = 0; ky < win_.kh; ++ky) {
          const uint64_t* src = packed + ((y0 + ky) * in_.w + x0) * words_;
          for (int64_t kx = 0; kx < win_.kw; ++kx) put_tap(dst, ky * win_.kw + kx, src + kx * words_);
        }
        continue;
      }
      for (int64_t ky = 0; ky < win_.kh; ++ky) {
        const int64_t iy = oy * win_.sh - win_.ph + ky;
        if (iy < 0 || iy >= in_.h) continue;
        for (int64_t kx = 0; kx < win_.kw; ++kx) {
          const int64_t ix = ox * win_.sw - win_.pw + kx;
          if (ix < 0 || ix >= in_.w) continue;
          put_tap(dst, ky * win_.kw + kx, packed + (iy * in_.w + ix) * words_);
        }
      }
    }
  }

  int64_t words_ = 0, taps_ = 0, k_words_ = 0;
  int64_t tap_bits_ = 0;  // bit stride between taps in a GEMM row: Cin (< 64) or whole words
  std::vector<uint64_t> packed_;                    // weights in the GEMM kernel's panels
  std::vector<std::vector<int32_t>> corrections_;   // per border class: [Cout]
  std::vector<const int32_t*> pixel_correction_;    // per output pixel of a sample
  bool has_padding_ = false;
};

}  // namespace

std::unique_ptr<Op> make_bconv2d(const OpDesc& d) { return std::make_unique<BConv2d>(d); }

}  // namespace irnet
