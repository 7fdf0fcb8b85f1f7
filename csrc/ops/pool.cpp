// Pooling on NHWC maps: max, average (PyTorch's floor mode and divisor rules), global average.
#include <algorithm>
#include <vector>

#include "kernels/contract.h"
#include "ops/op.h"
#include "ops/parallel.h"
#include "ops/scratch.h"

namespace irnet {

namespace {

class Pool2d final : public Op {
 public:
  Pool2d(const OpDesc& d, bool is_max) : Op(d), win_(Window::from(d)), max_(is_max) {
    check(win_.ph * 2 <= win_.kh && win_.pw * 2 <= win_.kw, d.where(),
          ": padding must be at most half the kernel size");
    if (!is_max) include_pad_ = d.int_attr("count_include_pad") != 0;
  }
  Shape prepare(const std::vector<Shape>& in, const GraphDesc&, const KernelConfig&) override {
    expect_inputs(in, 1);
    in_ = in[0];
    out_ = win_.output(desc_, in_, in_.c);
    return out_;
  }
  // Max pooling of sign bits (pass_sign_bits): the max of a window is negative only if every
  // value is, so its "negative" bit is the AND of theirs. Set in pairs by the plan.
  SignBits sign_bits() const override { return {max_, max_, max_}; }
  bool input_as_bits() override { return bits_ = max_; }
  bool output_as_bits() override { return bits_ = max_; }
  bool commutes_with_increasing_maps() const override { return max_; }
  bool as_max_pool(Window* window) const override {
    if (!max_ || bits_) return false;
    *window = win_;
    return true;
  }

  void run(const RunArgs& a) const override {
    const int64_t rows = a.batch * out_.h;
    // About one thread per 2^20 window taps (of a channel, or for bits of a word): pools are
    // memory bound and quick.
    const int64_t lanes = bits_ ? int64_t(words_for(size_t(in_.c))) : in_.c;
    const int64_t work = rows * out_.w * win_.kh * win_.kw * lanes;
    const int threads = int(std::max<int64_t>(1, std::min<int64_t>(a.num_threads, work >> 20)));
    // The cells a window can cover: a kernel larger than the map is clipped to it.
    const size_t window = size_t(std::min(win_.kh, in_.h) * std::min(win_.kw, in_.w));
    if (bits_) {
      parallel_region(threads, [&] { thread_scratch<const uint64_t*>(window); }, [&] {
        const uint64_t** taps = thread_scratch<const uint64_t*>(window);
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t ox = 0; ox < out_.w; ++ox) pool_bits_pixel(a, r / out_.h, r % out_.h, ox, taps);
      });
      return;
    }
    parallel_region(threads, [&] { thread_scratch<const float*>(window); }, [&] {
      const float** taps = thread_scratch<const float*>(window);
      // nowait: the region's end is the barrier (one fewer futex wake per layer when idle
      // workers sleep, see irnet_infer/__init__.py).
#pragma omp for schedule(static) nowait
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t ox = 0; ox < out_.w; ++ox) pool_pixel(a, r / out_.h, r % out_.h, ox, taps);
    });
  }

 private:
  // Average pooling sums kChunk channels at a time in a local array, which the compiler keeps
  // in vector registers across the window's taps.
  static constexpr int64_t kChunk = 64;

  Window::Cells cells(int64_t oy, int64_t ox) const { return win_.cells(oy, ox, in_.h, in_.w); }

  // One output pixel of the max pool of sign bits; taps: room for the window's input pixels.
  void pool_bits_pixel(const RunArgs& a, int64_t n, int64_t oy, int64_t ox, const uint64_t** taps) const {
    const int64_t words = int64_t(words_for(size_t(in_.c)));
    const uint64_t* in = a.in_bits;
    uint64_t* dst = a.out_bits + ((n * out_.h + oy) * out_.w + ox) * words;
    const Window::Cells w = cells(oy, ox);
    size_t n_taps = 0;
    for (int64_t y = w.ys; y < w.y1; ++y)
      for (int64_t x = w.xs; x < w.x1; ++x) taps[n_taps++] = in + ((n * in_.h + y) * in_.w + x) * words;
    IRN_ASSERT_CONTRACT("bitpool", n_taps == 0 ? "n_taps must be at least 1" : nullptr);
    a.kernels->bitpool(taps, n_taps, size_t(words), dst);
  }

  // taps: room for the window's input pixels.
  void pool_pixel(const RunArgs& a, int64_t n, int64_t oy, int64_t ox, const float** taps) const {
    const int64_t c = in_.c;
    const Window::Cells w = cells(oy, ox);
    float* dst = a.out + ((n * out_.h + oy) * out_.w + ox) * c;
    size_t n_taps = 0;
    for (int64_t y = w.ys; y < w.y1; ++y)
      for (int64_t x = w.xs; x < w.x1; ++x) taps[n_taps++] = a.in[0] + ((n * in_.h + y) * in_.w + x) * c;
    if (max_) {
      IRN_ASSERT_CONTRACT("maxpool", n_taps == 0 ? "n_taps must be at least 1" : nullptr);
      a.kernels->maxpool(taps, n_taps, size_t(c), dst);
      return;
    }
    // PyTorch's divisor counts padded cells inside [-pad, size + pad) when count_include_pad,
    // else only real cells.
    const int64_t y0 = oy * win_.sh - win_.ph, x0 = ox * win_.sw - win_.pw;
    const int64_t ph1 = std::min(y0 + win_.kh, in_.h + win_.ph), pw1 = std::min(x0 + win_.kw, in_.w + win_.pw);
    const float count = float(include_pad_ ? (ph1 - y0) * (pw1 - x0) : (w.y1 - w.ys) * (w.x1 - w.xs));
    for (int64_t c0 = 0; c0 < c; c0 += kChunk) {
      const int64_t len = std::min(kChunk, c - c0);
      float acc[kChunk] = {};
      for (size_t t = 0; t < n_taps; ++t)
        for (int64_t i = 0; i < len; ++i) acc[i] += taps[t][c0 + i];
      for (int64_t i = 0; i < len; ++i) dst[c0 + i] = acc[i] / count;
    }
  }

  Window win_;
  bool max_;
  bool bits_ = false;  // max pool of sign bits (see input_as_bits)
  bool include_pad_ = true;
  Shape in_, out_;
};

class GlobalAvgPool final : public Op {
 public:
  using Op::Op;
  Shape prepare(const std::vector<Shape>& in, const GraphDesc&, const KernelConfig&) override {
    expect_inputs(in, 1);
    check(in[0].spatial, desc_.where(), ": expects a [C,H,W] map, got ", in[0].str());
    in_ = in[0];
    return Shape{in_.c, 1, 1, true};
  }
  void run(const RunArgs& a) const override {
    const int64_t c = in_.c, pixels = in_.h * in_.w;
    for (int64_t n = 0; n < a.batch; ++n) {
      float* dst = a.out + n * c;
      std::fill(dst, dst + c, 0.0f);
      for (int64_t p = 0; p < pixels; ++p)
        for (int64_t i = 0; i < c; ++i) dst[i] += a.in[0][(n * pixels + p) * c + i];
      for (int64_t i = 0; i < c; ++i) dst[i] /= float(pixels);
    }
  }

 private:
  Shape in_;
};

}  // namespace

std::unique_ptr<Op> make_max_pool2d(const OpDesc& d) { return std::make_unique<Pool2d>(d, true); }
std::unique_ptr<Op> make_avg_pool2d(const OpDesc& d) { return std::make_unique<Pool2d>(d, false); }
std::unique_ptr<Op> make_global_avg_pool(const OpDesc& d) {
  return std::make_unique<GlobalAvgPool>(d);
}

}  // namespace irnet
