// Float convolution (stems, downsample shortcuts): an SGEMM whose left operand is read in place
// from the NHWC input, or from a zero-bordered copy of it when the conv pads. For output pixel
// (oy, ox) and kernel row ky, the kw taps x Cin channels are adjacent floats, so each kernel
// row is one contiguous segment of a GEMM row, found from a pointer to the pixel's first tap:
// no im2col copy, and a block of pixels (a tile of GEMM rows) may span output rows. The
// kernel's epilogue applies out = acc * mul + bias per output channel (a following BatchNorm
// folds into mul and bias), an optional residual add and clamp. A following max pool can be
// fused too (fuse_max_pool, graph/fuse_max_pools.cpp): the conv then writes only the pooled
// map, computing and pooling a band of rows at a time.
//
// `bwconv2d` (IR-Net 1W/32A: binary weights, float activations) is this same op: its sign bits
// are expanded once, at load, to +/-1 weights and its 2^shift goes into mul. The product is
// exact (a power of two), so acc * 2^shift equals PyTorch's sum of x * (+/-2^shift) up to the
// order of the sum.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "kernels/contract.h"
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

  // out_ stays the conv's own map (its MACs, its rows); the step writes pooled_out_. Not
  // with a residual, which the bands would have to read at the conv's resolution.
  bool fuse_max_pool(const Window& pool) override {
    if (residual_ || pooled_) return false;
    pooled_ = true;
    pool_ = pool;
    pooled_out_ = pool.output(desc_, out_, cout_);
    return true;
  }

  void run(const RunArgs& a) const override {
    const int64_t sample = padded_h_ * row_floats_;
    // Float MACs cost about 10 binary ones.
    const int threads = threads_for(a.num_threads, 10 * a.batch * float_macs());
    if (pooled_) {
      const Bands bands(*this, a.batch, threads);
      auto reserve = [&] {
        thread_scratch<float>(size_t(bands.max_rows * out_.w * cout_), kBandSlot);
        if (padded_) thread_scratch<float>(size_t(bands.input_rows(*this) * row_floats_), kBandInputSlot);
        thread_scratch<const float*>(size_t(std::min(pool_.kh, out_.h) * std::min(pool_.kw, out_.w)));
      };
      return parallel_region(threads, reserve, [&] { run_bands(a, bands); });
    }
    float* padded = padded_ ? thread_scratch<float>(size_t(a.batch * sample)) : nullptr;
    const float* x = padded_ ? padded : a.in[0];
    parallel_region(threads, [&] {
      if (padded_) {
#pragma omp for schedule(static)
        for (int64_t r = 0; r < a.batch * padded_h_; ++r) pad_row(a.in[0], r, padded + r * row_floats_);
      }
      const int64_t pixels_out = out_.h * out_.w;
      const Tasks tasks(a.batch, pixels_out, cout_, a.kernels->sgemm.nr, threads);
#pragma omp for schedule(static)
      for (int64_t task = 0; task < tasks.count; ++task) {
        const auto [n, p0, rows, j0, j1] = tasks[task];
        if (j0 >= j1) continue;
        const int64_t row0 = n * pixels_out + p0;
        gemm(a, x + n * sample, p0, rows, j0, j1, a.out + row0 * cout_, residual_ ? a.in[1] + row0 * cout_ : nullptr);
      }
    });
  }

 private:
  // thread_scratch slots (0: the zero-bordered batch): a band's conv rows, its input rows.
  static constexpr int kBandSlot = 1, kBandInputSlot = 2;

  // Output pixels [p0, p0 + rows) of a map whose row 0 reads its taps from the rows at x (the
  // zero-bordered input of one sample, or of a band), columns [j0, j1), written from out
  // (rows of cout_ floats).
  void gemm(const RunArgs& a, const float* x, int64_t p0, int64_t rows, int64_t j0, int64_t j1,
            float* out, const float* residual) const {
    // Each pixel's first tap: pixels of one output row are stride * Cin floats apart.
    const float* taps[Tasks::kRowBlock];
    for (int64_t r = 0, oy = p0 / out_.w, ox = p0 % out_.w; r < rows; ++r) {
      taps[r] = x + oy * win_.sh * row_floats_ + ox * win_.sw * cin_;
      if (++ox == out_.w) ox = 0, ++oy;
    }
    const SgemmLhs lhs{taps, seg_offsets_.data(), seg_offsets_.size(), size_t(win_.kw * cin_)};
    const SgemmOutput o{mul_.data(), bias_.data(), residual, lo_, hi_, out, size_t(cout_), size_t(j0)};
    a.kernels->sgemm.run(size_t(rows), size_t(j1 - j0), lhs, packed_.data() + j0 * k_, o);
  }

  // With a fused max pool, a thread's work is bands of pooled rows: it copies the input rows
  // a band reads into its scratch with their zero border (no pass over the whole batch first),
  // computes the conv rows the band's windows cover (about 8, a few hundred KB: L2), then
  // pools them. Consecutive bands share rows (3x3 stride 2 windows: one); a thread's bands are
  // consecutive, so it moves those to the front of the scratch instead of computing them
  // again. Bands per batch are a multiple of the threads where possible, so threads get equal
  // shares.
  struct Bands {
    int64_t per_sample = 0, rows = 0, count = 0, max_rows = 0;  // rows: pooled rows a band
    Bands(const Conv2d& c, int64_t batch, int threads) {
      const int64_t h = c.pooled_out_.h;
      per_sample = (h * c.pool_.sh + 7) / 8;  // about 8 conv rows a band
      per_sample = std::max<int64_t>(1, std::min(per_sample, h));
      while ((batch * per_sample) % threads != 0 && per_sample < h) ++per_sample;
      rows = (h + per_sample - 1) / per_sample;
      per_sample = (h + rows - 1) / rows;
      count = batch * per_sample;
      max_rows = std::min(c.out_.h, (rows - 1) * c.pool_.sh + c.pool_.kh);
    }
    // Zero-bordered input rows that max_rows conv rows read.
    int64_t input_rows(const Conv2d& c) const { return (max_rows - 1) * c.win_.sh + c.win_.kh; }
  };

  // Conv rows [first, last) that the windows of pooled rows [p0, p1) cover.
  std::pair<int64_t, int64_t> conv_rows(int64_t p0, int64_t p1) const {
    return {pool_.cells(p0, 0, out_.h, out_.w).ys, pool_.cells(p1 - 1, 0, out_.h, out_.w).y1};
  }

  void run_bands(const RunArgs& a, const Bands& bands) const {
    const int64_t row = out_.w * cout_;  // floats of one conv row
    float* conv = thread_scratch<float>(size_t(bands.max_rows * row), kBandSlot);
    float* input = padded_ ? thread_scratch<float>(size_t(bands.input_rows(*this) * row_floats_), kBandInputSlot) : nullptr;
    const float** taps = thread_scratch<const float*>(size_t(std::min(pool_.kh, out_.h) * std::min(pool_.kw, out_.w)));
    int64_t have_n = -1, have0 = 0, have1 = 0;  // sample and conv rows [have0, have1) in `conv`
#pragma omp for schedule(static)
    for (int64_t b = 0; b < bands.count; ++b) {
      const int64_t n = b / bands.per_sample, p0 = (b % bands.per_sample) * bands.rows;
      const int64_t p1 = std::min(pooled_out_.h, p0 + bands.rows);
      const auto [r0, r1] = conv_rows(p0, p1);
      int64_t from = r0;
      if (n == have_n && have0 <= r0 && r0 < have1) {
        std::memmove(conv, conv + (r0 - have0) * row, sizeof(float) * size_t((have1 - r0) * row));
        from = have1;
      }
      if (from < r1) compute_rows(a, n, from, r1, input, conv + (from - r0) * row);
      have_n = n, have0 = r0, have1 = r1;
      for (int64_t py = p0; py < p1; ++py)
        for (int64_t px = 0; px < pooled_out_.w; ++px) pool_pixel(a, conv, r0, n, py, px, taps);
    }
  }

  // Conv rows [y0, y1) of sample n into out. input: room for the zero-bordered input rows they
  // read (when the conv pads).
  void compute_rows(const RunArgs& a, int64_t n, int64_t y0, int64_t y1, float* input, float* out) const {
    const int64_t q0 = y0 * win_.sh, q1 = (y1 - 1) * win_.sh + win_.kh;  // (zero-bordered) input rows
    if (padded_)
      for (int64_t q = q0; q < q1; ++q) pad_row(a.in[0], n * padded_h_ + q, input + (q - q0) * row_floats_);
    const float* x = padded_ ? input : a.in[0] + (n * in_.h + q0) * row_floats_;
    // Blocks of at most kRowBlock pixels, of about equal size.
    const int64_t pixels = (y1 - y0) * out_.w, blocks = (pixels + Tasks::kRowBlock - 1) / Tasks::kRowBlock;
    for (int64_t q = 0, p = 0; q < blocks; ++q) {
      const int64_t len = pixels / blocks + (q < pixels % blocks ? 1 : 0);
      gemm(a, x, p, len, 0, cout_, out + p * cout_, nullptr);
      p += len;
    }
  }

  // Pooled pixel (py, px) of sample n from the conv rows in `conv` (the first is conv row r0).
  void pool_pixel(const RunArgs& a, const float* conv, int64_t r0, int64_t n, int64_t py, int64_t px,
                  const float** taps) const {
    const Window::Cells w = pool_.cells(py, px, out_.h, out_.w);
    size_t n_taps = 0;
    for (int64_t y = w.ys; y < w.y1; ++y)
      for (int64_t x = w.xs; x < w.x1; ++x) taps[n_taps++] = conv + ((y - r0) * out_.w + x) * cout_;
    IRN_ASSERT_CONTRACT("maxpool", n_taps == 0 ? "n_taps must be at least 1" : nullptr);
    a.kernels->maxpool(taps, n_taps, size_t(cout_),
                       a.out + ((n * pooled_out_.h + py) * pooled_out_.w + px) * cout_);
  }

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
  bool pooled_ = false;                    // a max pool is fused (fuse_max_pool)
  Window pool_{};
  Shape pooled_out_;
};

}  // namespace

std::unique_ptr<Op> make_conv2d(const OpDesc& d) { return std::make_unique<Conv2d>(d); }

}  // namespace irnet
