// Binary convolution: sign + bit-pack the input into a zero-bordered map, then a binary GEMM
// (XOR + popcount) whose epilogue applies the output transform. With 64 or more input
// channels every tap is whole words, so the GEMM reads the taps in place (BgemmLhs offset
// tables, no im2col); below 64 a pixel's taps are copied back to back into GEMM rows.
//
// The arithmetic, derived once:
//  - With K = kh*kw*Cin products of +/-1 values, dot = K - 2 * popcount(a XOR w).
//  - IR-Net's weight is sign(w_std) * 2^shift, so conv = dot * 2^shift exactly.
//  - A BatchNorm that follows is y * scale + shift' (scale = gamma/sqrt(var+eps)); folding gives
//    mul = 2^shift * scale (exact: a power-of-two multiply) and bias = shift' (no conv bias, see
//    conv_base.h), and the epilogue's fma(dot, mul, shift') rounds once, as PyTorch's
//    fma(conv, scale, shift') does: bit for bit the same (tests/test_bn_fold.py).
//  - Zero padding is exact: padded taps are packed as +1 (bits 0), which adds that tap's weight
//    sum to the dot; border pixels subtract those sums (ops/border_correction.h: one vector per
//    border class, a table sized by the kernel, never by the map).
//  - Nothing prepared here grows with the map: per-pixel GEMM row offsets and corrections are
//    made per task, on the stack, so loading a file that declares a huge map costs nothing.
//  - A following residual add and hardtanh/relu run in the same epilogue.
//  - Layers with fewer than 64 input channels (the CIFAR networks' 16 and 32) pack the taps
//    back to back (tap t at bit t * Cin) instead of one word per tap, so a 3x3 layer with 16
//    channels needs 3 words per pixel instead of 9. Their input rows are bit rows too (pixel x
//    at bit x * Cin), so the kw taps of a kernel row are one run of bits, copied in one go.
//    Weights are laid out the same way.
//  - Between two binary convs (pass_sign_bits) the input may arrive as sign bits, which skip
//    the bit-pack, and the output may leave as sign bits: the epilogue's floats for a block go
//    to per-thread scratch and are bit-packed at once, so the bits are exactly the ones the
//    next conv would have made from them.
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include <omp.h>

#include "kernels/contract.h"
#include "ops/bit_rows.h"
#include "ops/border_correction.h"
#include "ops/conv_base.h"
#include "ops/parallel.h"
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
    // Whole words per tap from 64 channels on (taps read in place); below, taps back to back.
    in_place_ = cin_ >= 64;
    const int64_t tap_bits = in_place_ ? words_ * 64 : cin_;
    k_words_ = (checked_mul(taps_, tap_bits, "kernel") + 63) / 64;
    // The binary GEMM's k_bits contract (kernels/bgemm.h): refused here, in every build.
    const int64_t k_bits = checked_mul(taps_, cin_, "kernel");
    check(k_bits <= kBgemmMaxKBits, desc_.where(), ": kernel_h * kernel_w * in_channels = ", k_bits,
          " exceeds the binary GEMM's limit of 2^24 - 1 = ", kBgemmMaxKBits, " (exact float output)");
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
    has_padding_ = win_.ph > 0 || win_.pw > 0;
    if (has_padding_)
      corrections_ = BorderCorrection(AxisRanges(in_.h, win_.kh, win_.sh, win_.ph, out_.h),
                                      AxisRanges(in_.w, win_.kw, win_.sw, win_.pw, out_.w), win_.kh,
                                      win_.kw, cout_, tap_sum);
    std::vector<uint64_t> rows(size_t(cout_ * k_words_), 0);
    for (int64_t o = 0; o < cout_; ++o) {
      const uint64_t* src = w + o * taps_ * words_;
      if (in_place_) {
        std::memcpy(rows.data() + o * k_words_, src, sizeof(uint64_t) * size_t(k_words_));
        continue;
      }
      BitWriter row(rows.data() + o * k_words_);
      for (int64_t t = 0; t < taps_; ++t) row.put(src[t], int(cin_));
      row.flush();
    }
    packed_ = bgemm_pack_b(size_t(cout_), size_t(k_words_), k.bgemm, rows.data());
    std::vector<float> mul(static_cast<size_t>(cout_));
    for (int64_t o = 0; o < cout_; ++o) {
      const int s = sh.data<int8_t>()[o];
      check(s >= -100 && s <= 100, desc_.where(), ": shift ", s, " is out of range -100..100");
      mul[size_t(o)] = std::ldexp(1.0f, s);
    }
    init_transform(g, std::move(mul));
    padded_h_ = in_.h + 2 * win_.ph;
    padded_w_ = in_.w + 2 * win_.pw;
    if (in_place_) plan_in_place(); else plan_bit_rows();
    return out_;
  }

  int64_t binary_macs() const override { return out_.numel() * taps_ * cin_; }

  // Set by the plan (see graph/pass_sign_bits.cpp).
  SignBits sign_bits() const override { return {true, true, false}; }
  bool input_as_bits() override { return bits_in_ = true; }
  bool output_as_bits() override {
    floats_out_ = false;
    return bits_out_ = true;
  }
  bool output_floats_and_bits() override { return bits_out_ = true; }
  // Taps read in place want the padding as the bit map's border; bit rows are made per layer.
  BitsBorder input_bits_border() const override {
    return in_place_ ? BitsBorder{win_.ph, win_.pw} : BitsBorder{};
  }
  bool input_bits_bordered() override { return bits_in_bordered_ = bits_in_ && in_place_; }
  bool output_bits_border(const BitsBorder& border) override {
    out_border_ = border;
    return bits_out_;
  }

  void run(const RunArgs& a) const override {
    const KernelConfig& k = *a.kernels;
    const int64_t pixels_out = out_.h * out_.w;
    const int64_t sample_words = padded_h_ * row_words_;
    // Input bits already laid out as the taps are read (bordered by the producer, or no
    // padding to add): the GEMM reads them where they are, with no pass before it.
    const bool map_ready = bits_in_ && in_place_ && (bits_in_bordered_ || !has_padding_);
    uint64_t* packed = map_ready ? nullptr : thread_scratch<uint64_t>(size_t(a.batch * sample_words));
    const uint64_t* map = map_ready ? a.in_bits : packed;
    const int threads = threads_for(a.num_threads, a.batch * binary_macs());
    // Bits are written a 64-bit word at a time: channel groups then start on a word.
    const size_t group_cols = bits_out_ ? std::lcm(k.bgemm.nr, size_t(64)) : k.bgemm.nr;
    const Tasks tasks(a.batch, pixels_out, cout_, group_cols, threads);
    const bool out_bordered = bits_out_ && !(out_border_ == BitsBorder{});
    const int64_t out_rows = out_.h + 2 * out_border_.h;
    // Per-thread memory, one slice per thread of the region, sized here by the calling thread,
    // where a failed allocation throws as usual: the region then allocates nothing and starts
    // without a barrier (parallel_region). Slices are whole cache lines (no false sharing).
    // Slot 1: a bit-row layer's packed input row, then its block of GEMM rows; slot 2: the
    // floats of a block whose output is sign bits only.
    const size_t cols_slice = in_place_ ? 0 : size_t(round_to_cache_lines<uint64_t>(
                                                  std::max(bits_in_ ? 0 : in_.w, tasks.block * k_words_)));
    const size_t floats_slice = floats_out_ ? 0 : size_t(round_to_cache_lines<float>(tasks.block * cout_));
    uint64_t* cols_all = cols_slice ? thread_scratch<uint64_t>(cols_slice * size_t(threads), 1) : nullptr;
    float* floats_all = floats_slice ? thread_scratch<float>(floats_slice * size_t(threads), 2) : nullptr;
    parallel_region(threads, [&] {
      const size_t me = threads > 1 ? size_t(omp_get_thread_num()) : 0;
      uint64_t* cols = cols_all ? cols_all + me * cols_slice : nullptr;
      if (!map_ready) {
#pragma omp for schedule(static)
        for (int64_t r = 0; r < a.batch * padded_h_; ++r)
          pack_row(k, a.in[0], a.in_bits, r, packed + r * row_words_, cols);
      }
      // The output map's border and its inside are written by different loops: no barrier.
      if (out_bordered) {
#pragma omp for schedule(static) nowait
        for (int64_t r = 0; r < a.batch * out_rows; ++r) zero_border(a.out_bits, r);
      }
      // nowait: the region's end is the barrier (one fewer futex wake per layer when idle
      // workers sleep, see irnet_infer/__init__.py).
#pragma omp for schedule(static) nowait
      for (int64_t task = 0; task < tasks.count; ++task) {
        const auto [n, p0, rows, j0, j1] = tasks[task];
        if (j0 >= j1) continue;
        const uint64_t* sample = map + n * sample_words;
        // The block's GEMM rows and border corrections (rows <= kRowBlock).
        uint32_t row_offsets[Tasks::kRowBlock];
        const int32_t* correction[Tasks::kRowBlock];
        BgemmLhs lhs{sample, row_offsets, k_offsets_.data(), size_t(k_words_)};
        if (in_place_) {
          int64_t oy = p0 / out_.w, ox = p0 % out_.w;
          for (int64_t r = 0; r < rows; ++r) {
            row_offsets[r] = uint32_t(oy * win_.sh * row_words_ + ox * win_.sw * words_);
            if (++ox == out_.w) ox = 0, ++oy;
          }
        } else {
          im2col(sample, p0, rows, cols);
          lhs.base = cols;
          for (int64_t r = 0; r < rows; ++r) row_offsets[r] = uint32_t(r * k_words_);
        }
        if (has_padding_) corrections_.fill(p0, rows, out_.w, correction);
        const int64_t out_row = n * pixels_out + p0;
        // Floats go to the output, or for a bits-only output to a per-thread block; for a bits
        // output they are bit-packed right away, the same compare the next conv would make.
        float* y = floats_out_ ? a.out + out_row * cout_ : floats_all + me * floats_slice;
        const BgemmOutput o{int32_t(taps_ * cin_), mul_.data(), bias_.data(),
                            has_padding_ ? correction : nullptr,
                            residual_ ? a.in[1] + out_row * cout_ : nullptr,
                            lo_, hi_, y, size_t(cout_), size_t(j0)};
        IRN_ASSERT_CONTRACT("bgemm", bgemm_contract_violation(size_t(j1 - j0), lhs, o, k.bgemm));
        k.bgemm.run(size_t(rows), size_t(j1 - j0), lhs,
                    packed_.data() + bgemm_packed_offset(k.bgemm, size_t(j0), size_t(k_words_)), o);
        if (bits_out_) {
          const int64_t words_out = int64_t(words_for(size_t(cout_)));
          const int64_t row_pixels = out_.w + 2 * out_border_.w;
          uint64_t* bits = a.out_bits + n * out_rows * row_pixels * words_out + j0 / 64;
          // One call per run of pixels that lie back to back in the map, when the floats of a
          // pixel are the whole group (the kernel's row stride is its channel count).
          const int64_t most = j1 - j0 == cout_ ? out_.w : 1;
          int64_t oy = p0 / out_.w, ox = p0 % out_.w;
          for (int64_t r = 0; r < rows;) {
            const int64_t run = std::min({most, out_.w - ox, rows - r});
            const int64_t pixel = (oy + out_border_.h) * row_pixels + ox + out_border_.w;
            k.bitpack(y + r * cout_ + j0, size_t(run), size_t(j1 - j0), bits + pixel * words_out);
            r += run;
            if ((ox += run) == out_.w) ox = 0, ++oy;
          }
        }
      }
    });
  }

  // Zeroes the border part of row r of the bordered output map of sign bits (sample
  // r / rows): the whole row above or below the map, else its first and last border.w pixels.
  void zero_border(uint64_t* out_bits, int64_t r) const {
    const int64_t words_out = int64_t(words_for(size_t(cout_)));
    const int64_t row_words = (out_.w + 2 * out_border_.w) * words_out;
    const int64_t y = r % (out_.h + 2 * out_border_.h) - out_border_.h;
    uint64_t* row = out_bits + r * row_words;
    if (y < 0 || y >= out_.h) {
      std::memset(row, 0, sizeof(uint64_t) * size_t(row_words));
      return;
    }
    const size_t side = sizeof(uint64_t) * size_t(out_border_.w * words_out);
    std::memset(row, 0, side);
    std::memset(row + row_words - out_border_.w * words_out, 0, side);
  }

  // The input is packed into a map with a zero border as wide as the padding (zero bits are
  // +1, which the border corrections take back out), so every tap of every output pixel has
  // an address. Taps read in place: a GEMM row starts at the pixel's first tap (made per task
  // in run), k offset = the tap's distance from it.
  void plan_in_place() {
    row_words_ = checked_mul(padded_w_, words_, "input");
    check(checked_mul(padded_h_, row_words_, "input") < (int64_t(1) << 32), desc_.where(),
          ": input map too large for 32-bit tap offsets");
    k_offsets_.clear();
    for (int64_t ky = 0; ky < win_.kh; ++ky)
      for (int64_t kx = 0; kx < win_.kw; ++kx)
        for (int64_t w = 0; w < words_; ++w) k_offsets_.push_back(uint32_t(ky * row_words_ + kx * words_ + w));
  }

  // Bit rows: row y holds pixel x at bit x * Cin, plus one spare word that read_bits may touch.
  // The GEMM reads the im2col rows of a task: row i at i * k_words, words in order.
  void plan_bit_rows() {
    row_words_ = (checked_mul(padded_w_, cin_, "input") + 63) / 64 + 1;
    k_offsets_.clear();
    for (int64_t w = 0; w < k_words_; ++w) k_offsets_.push_back(uint32_t(w));
  }

  // Row r of the zero-bordered packed batch (sample r / padded_h_), row_words_ words at dst,
  // from the floats at `in` or, when bits_in_, the sign bits at `in_bits`; `scratch` (bit rows
  // from floats) holds in_.w words.
  void pack_row(const KernelConfig& k, const float* in, const uint64_t* in_bits, int64_t r,
                uint64_t* dst, uint64_t* scratch) const {
    const int64_t n = r / padded_h_, y = r % padded_h_ - win_.ph;
    std::memset(dst, 0, sizeof(uint64_t) * size_t(row_words_));
    if (y < 0 || y >= in_.h) return;
    const int64_t first = (n * in_.h + y) * in_.w;  // the row's first pixel in the batch
    // One word group per pixel: the input's own when it arrives as bits, else bit-packed
    // (in place, or into `scratch`, free until the GEMM tasks take it for im2col).
    const uint64_t* words = bits_in_ ? in_bits + first * words_ : nullptr;
    if (in_place_) {
      if (words)
        std::memcpy(dst + win_.pw * words_, words, sizeof(uint64_t) * size_t(in_.w * words_));
      else
        k.bitpack(in + first * cin_, size_t(in_.w), size_t(cin_), dst + win_.pw * words_);
      return;
    }
    if (!words) {
      k.bitpack(in + first * cin_, size_t(in_.w), size_t(cin_), scratch);
      words = scratch;
    }
    BitWriter row(dst);
    for (int64_t x = 0; x < win_.pw; ++x) row.put(0, int(cin_));
    for (int64_t x = 0; x < in_.w; ++x) row.put(words[x], int(cin_));
    row.flush();
  }

  // The GEMM rows of output pixels [p0, p0 + rows) of one sample from its bit rows: per
  // kernel row, its kw taps are kw * Cin adjacent bits. The CIFAR layers' 3x3 windows of 16
  // and 32 channels (48 and 96 bits per kernel row) get a copy compiled for that width.
  // With both sizes known at compile time the loops unroll and every field lands at a fixed
  // bit, so the writer's state folds away: shifts and ORs, no branches.
  void im2col(const uint64_t* sample, int64_t p0, int64_t rows, uint64_t* cols) const {
    if (win_.kh == 3 && win_.kw * cin_ == 48) return im2col_rows<48, 3>(sample, p0, rows, cols);
    if (win_.kh == 3 && win_.kw * cin_ == 96) return im2col_rows<96, 3>(sample, p0, rows, cols);
    im2col_rows<0, 0>(sample, p0, rows, cols);
  }
  // kBits, kH: the bits per kernel row and the kernel rows if known at compile time, else 0.
  template <int kBits, int kH>
  void im2col_rows(const uint64_t* sample, int64_t p0, int64_t rows, uint64_t* cols) const {
    const int bits = kBits ? kBits : int(win_.kw * cin_);
    const uint64_t row_bits = uint64_t(row_words_) * 64, step = uint64_t(win_.sw * cin_);
    const int64_t kh = kH ? kH : win_.kh;
    int64_t oy = p0 / out_.w, ox = p0 % out_.w;
    uint64_t first = uint64_t(oy * win_.sh) * row_bits + uint64_t(ox) * step;  // bit of the window's corner
    for (int64_t r = 0; r < rows; ++r) {
      BitWriter dst(cols + r * k_words_);
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int b = 0; b < bits; b += kMaxReadBits) {
          const int piece = std::min(kMaxReadBits, bits - b);
          dst.put(read_bits(sample, first + uint64_t(ky) * row_bits + uint64_t(b), piece), piece);
        }
      dst.flush();
      first += step;
      if (++ox == out_.w) {
        ox = 0;
        ++oy;
        first = uint64_t(oy * win_.sh) * row_bits;
      }
    }
  }

  int64_t words_ = 0, taps_ = 0, k_words_ = 0;
  bool in_place_ = false;  // Cin >= 64: taps read from the packed input (else copied by im2col)
  // Sign bits instead of (or, for the output, also) floats, set by pass_sign_bits; bits in
  // with the padding as their border; the output's border.
  bool bits_in_ = false, bits_in_bordered_ = false, bits_out_ = false, floats_out_ = true;
  BitsBorder out_border_;
  int64_t padded_h_ = 0, padded_w_ = 0;  // the zero-bordered packed input map
  int64_t row_words_ = 0;                // words per row of it
  std::vector<uint32_t> k_offsets_;  // the GEMM's left operand (BgemmLhs), with per-task row offsets
  std::vector<uint64_t> packed_;      // weights in the GEMM kernel's panels
  BorderCorrection corrections_;      // of the padded taps, per border class
  bool has_padding_ = false;
};

}  // namespace

std::unique_ptr<Op> make_bconv2d(const OpDesc& d) { return std::make_unique<BConv2d>(d); }

}  // namespace irnet
