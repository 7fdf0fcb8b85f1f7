// Float convolution (stems, downsample shortcuts): an SGEMM whose left operand is read in place
// from the NHWC input, or from a zero-bordered copy of it when the conv pads. For output pixel
// (oy, ox) and kernel row ky, the kw taps x Cin channels are adjacent floats, so each kernel
// row is one contiguous segment of a GEMM row, found from a pointer to the pixel's first tap:
// no im2col copy, and a block of pixels (a tile of GEMM rows) may span output rows. The
// kernel's epilogue applies out = acc * mul + bias per output channel (a following BatchNorm
// folds into mul and bias), an optional residual add and clamp.
//
// `bwconv2d` (IR-Net 1W/32A: binary weights, float activations) is this same op: its sign bits
// are expanded once, at load, to +/-1 weights and its 2^shift goes into mul. The product is
// exact (a power of two), so acc * 2^shift equals PyTorch's sum of x * (+/-2^shift) up to the
// order of the sum.
#include <algorithm>
#include <cmath>

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
    // [(ky, kx, c)][o], the order of a pixel's taps in the NHWC input. Sized only after the
    // file's tensor has been checked against the declared shape: a few bytes of graph must
    // not buy a large allocation before the refusal.
    std::vector<float> weights, mul;
    if (desc_.type == "bwconv2d") {
      expand_sign_bits(g, weights, mul);
    } else {
      const HostTensor& w = g.param(desc_, "weight", DType::F32, {cout_, cin_, win_.kh, win_.kw});
      weights.resize(size_t(k_ * cout_));
      mul.assign(size_t(cout_), 1.0f);
      const float* src = w.data<float>();
      for (int64_t o = 0; o < cout_; ++o)
        for (int64_t c = 0; c < cin_; ++c)
          for (int64_t ky = 0; ky < win_.kh; ++ky)
            for (int64_t kx = 0; kx < win_.kw; ++kx)
              weights[size_t(((ky * win_.kw + kx) * cin_ + c) * cout_ + o)] =
                  src[((o * cin_ + c) * win_.kh + ky) * win_.kw + kx];
    }
    packed_ = sgemm_pack_b(size_t(k_), size_t(cout_), k.sgemm.nr, weights.data());
    init_transform(g, std::move(mul));
    padded_ = win_.ph > 0 || win_.pw > 0;
    padded_h_ = in_.h + 2 * win_.ph;
    row_floats_ = checked_mul(in_.w + 2 * win_.pw, cin_, "input");
    seg_offsets_.clear();
    for (int64_t ky = 0; ky < win_.kh; ++ky) seg_offsets_.push_back(size_t(ky * row_floats_));
    return out_;
  }

  int64_t float_macs() const override { return out_.numel() * k_; }

  void run(const RunArgs& a) const override {
    const int64_t pixels_out = out_.h * out_.w;
    const int64_t sample = padded_h_ * row_floats_;
    // Float MACs cost about 10 binary ones.
    const int threads = threads_for(a.num_threads, 10 * a.batch * float_macs());
    float* padded = padded_ ? thread_scratch<float>(size_t(a.batch * sample)) : nullptr;
    const float* x = padded_ ? padded : a.in[0];
    parallel_region(threads, [&] {
      if (padded_) {
#pragma omp for schedule(static)
        for (int64_t r = 0; r < a.batch * padded_h_; ++r) pad_row(a.in[0], r, padded + r * row_floats_);
      }
      const Tasks tasks(a.batch, pixels_out, cout_, a.kernels->sgemm.nr, threads);
#pragma omp for schedule(static)
      for (int64_t task = 0; task < tasks.count; ++task) {
        const auto [n, p0, rows, j0, j1] = tasks[task];
        if (j0 >= j1) continue;
        // Each pixel's first tap: pixels of one output row are stride * Cin floats apart.
        const float* taps[Tasks::kRowBlock];
        for (int64_t r = 0, oy = p0 / out_.w, ox = p0 % out_.w; r < rows; ++r) {
          taps[r] = x + n * sample + oy * win_.sh * row_floats_ + ox * win_.sw * cin_;
          if (++ox == out_.w) ox = 0, ++oy;
        }
        const SgemmLhs lhs{taps, seg_offsets_.data(), seg_offsets_.size(), size_t(win_.kw * cin_)};
        const int64_t row0 = n * pixels_out + p0;
        const SgemmOutput o{mul_.data(), bias_.data(), residual_ ? a.in[1] + row0 * cout_ : nullptr,
                            lo_, hi_, a.out + row0 * cout_, size_t(cout_), size_t(j0)};
        a.kernels->sgemm.run(size_t(rows), size_t(j1 - j0), lhs, packed_.data() + j0 * k_, o);
      }
    });
  }

 private:
  // bwconv2d: weight_bits [Cout][kh][kw][words] (bit set = -1) -> +/-1 in `weights`, 2^shift in `mul`.
  void expand_sign_bits(const GraphDesc& g, std::vector<float>& weights, std::vector<float>& mul) const {
    const int64_t words = (cin_ + 63) / 64, taps = win_.kh * win_.kw;
    const uint64_t* w = g.param(desc_, "weight_bits", DType::U64, {cout_, win_.kh, win_.kw, words}).data<uint64_t>();
    const int8_t* sh = g.param(desc_, "shift", DType::I8, {cout_}).data<int8_t>();
    const uint64_t tail = cin_ % 64 ? ~uint64_t(0) << (cin_ % 64) : 0;
    weights.resize(size_t(k_ * cout_));
    mul.assign(size_t(cout_), 1.0f);
    for (int64_t o = 0; o < cout_; ++o) {
      check(sh[o] >= -100 && sh[o] <= 100, desc_.where(), ": shift ", int(sh[o]), " is out of range -100..100");
      mul[size_t(o)] = std::ldexp(1.0f, sh[o]);
      for (int64_t t = 0; t < taps; ++t) {
        const uint64_t* bits = w + (o * taps + t) * words;
        check((bits[words - 1] & tail) == 0, desc_.where(), ": weight_bits has bits set beyond in_channels");
        for (int64_t c = 0; c < cin_; ++c)
          weights[size_t((t * cin_ + c) * cout_ + o)] = (bits[c / 64] >> (c % 64)) & 1 ? -1.0f : 1.0f;
      }
    }
  }

  // Row r of the zero-bordered batch (sample r / padded_h_), row_floats_ floats at dst.
  void pad_row(const float* in, int64_t r, float* dst) const {
    const int64_t n = r / padded_h_, y = r % padded_h_ - win_.ph;
    if (y < 0 || y >= in_.h) {
      std::fill(dst, dst + row_floats_, 0.0f);
      return;
    }
    const int64_t border = win_.pw * cin_, inner = in_.w * cin_;
    std::fill(dst, dst + border, 0.0f);
    std::copy(in + (n * in_.h + y) * inner, in + (n * in_.h + y + 1) * inner, dst + border);
    std::fill(dst + border + inner, dst + row_floats_, 0.0f);
  }

  int64_t k_ = 0;
  SgemmPackedB packed_;         // weights [kh*kw*Cin][Cout] in the SGEMM kernel's panels
  bool padded_ = false;         // taps are read from a zero-bordered copy of the input
  int64_t padded_h_ = 0, row_floats_ = 0;  // rows of that map (or of the input), floats per row
  std::vector<size_t> seg_offsets_;        // kernel row ky: ky rows below a pixel's first tap
};

}  // namespace

std::unique_ptr<Op> make_conv2d(const OpDesc& d) { return std::make_unique<Conv2d>(d); }

}  // namespace irnet
