// Operator lifecycle: construct (read attributes) -> prepare (check input shapes, one-time setup
// such as weight repacking) -> run (many times, concurrently: run is const).
#pragma once
#include <memory>
#include <vector>

#include "model/desc.h"
#include "kernels/config.h"
#include "ops/shape.h"

namespace irnet {

struct RunArgs {
  std::vector<const float*> in;  // one pointer per input, batch-major (null for sign bits)
  float* out;                    // null when the output is sign bits
  int64_t batch;
  const KernelConfig* kernels;
  int num_threads;
  // The first input and the output when they are sign bits (input_as_bits, output_as_bits):
  // a buffer is only ever accessed as the type it holds (graph/plan.cpp, run_layers).
  const uint64_t* in_bits = nullptr;
  uint64_t* out_bits = nullptr;
};

struct Window;  // below

class Op {
 public:
  explicit Op(const OpDesc& desc) : desc_(desc) {}
  virtual ~Op() = default;
  virtual Shape prepare(const std::vector<Shape>& in, const GraphDesc& graph,
                        const KernelConfig& kernels) = 0;
  virtual void run(const RunArgs& args) const = 0;
  // Conv-like ops absorb a following per-channel affine map y = x * scale + shift.
  virtual bool fold_affine(const std::vector<float>& /*scale*/, const std::vector<float>& /*shift*/) {
    return false;
  }
  // Conv-like ops absorb a following add (its other operand arrives as an extra input in
  // RunArgs::in) and a following clamp (hardtanh / relu), applied in their output transform.
  virtual bool fuse_residual() { return false; }
  // Whether fuse_residual() would succeed now (the plan asks before reordering steps for it).
  virtual bool can_fuse_residual() const { return false; }
  virtual bool fuse_clamp(float /*lo*/, float /*hi*/) { return false; }
  // Sign bits between binary convolutions: an op reads its first input as, or writes its
  // output as, sign bits packed like a binary conv's input (per pixel, ceil(C/64) words, bit
  // 1 = negative: what the next binary conv's bit-pack would produce from the floats).
  // sign_bits() says what the op can do; the plan then sets it, only where the floats are
  // never needed, with input_as_bits / output_as_bits (which return whether the op agrees).
  struct SignBits {
    bool read = false;      // can read its first input as sign bits
    bool write = false;     // can write its output as sign bits
    bool together = false;  // reads bits exactly when it writes them (bits to bits: max pool)
  };
  virtual SignBits sign_bits() const { return {}; }
  virtual bool input_as_bits() { return false; }
  virtual bool output_as_bits() { return false; }
  // An op that can write bits may also write both: its floats to RunArgs::out and their sign
  // bits to RunArgs::out_bits, for a tensor that binary convs read as bits and other ops (a
  // residual add, a float conv) as floats. Returns whether the op agrees.
  virtual bool output_floats_and_bits() { return false; }
  // A map of sign bits may carry a zero border (all bits 0) of `h` pixels above and below and
  // `w` left and right, per sample: (H + 2h) x (W + 2w) pixels of ceil(C/64) words. A binary
  // conv that reads its taps in place wants its padding as that border, and then needs no
  // pass of its own to copy the map into a bordered one; the op writing the bits writes the
  // border too. The plan asks the readers (input_bits_border) and, when they agree, tells the
  // writer (output_bits_border) and the readers (input_bits_bordered).
  struct BitsBorder {
    int64_t h = 0, w = 0;
    bool operator==(const BitsBorder& o) const { return h == o.h && w == o.w; }
  };
  virtual BitsBorder input_bits_border() const { return {}; }
  virtual bool input_bits_bordered() { return false; }
  virtual bool output_bits_border(const BitsBorder& border) { return border == BitsBorder{}; }
  // Each output element is one of the input elements of its own channel (max pooling), so a
  // per-channel non-decreasing map applied after the op gives what it gives applied before.
  virtual bool commutes_with_increasing_maps() const { return false; }
  // A max pool over floats states its window; an op that can pool its own output takes it
  // (fuse_max_pool) and then writes the pooled map instead of its own.
  virtual bool as_max_pool(Window* /*window*/) const { return false; }
  virtual bool fuse_max_pool(const Window& /*window*/) { return false; }
  // Clamp ops state their bounds so the plan can fuse them.
  virtual bool as_clamp(float* /*lo*/, float* /*hi*/) const { return false; }
  // The element-wise sum of two inputs of one shape (add) says so: the plan folds it into the
  // producer of one operand, the other becoming a residual input.
  virtual bool is_sum() const { return false; }
  // An op that is a per-channel affine map (batch_norm) states it, so the plan can fold it.
  virtual bool as_affine(std::vector<float>* /*scale*/, std::vector<float>* /*shift*/) const {
    return false;
  }
  // Binary MACs and float MACs per sample, for reports.
  virtual int64_t binary_macs() const { return 0; }
  virtual int64_t float_macs() const { return 0; }
  const OpDesc& desc() const { return desc_; }

 protected:
  void expect_inputs(const std::vector<Shape>& in, size_t n) const {
    check(in.size() == n, desc_.where(), ": expects ", n, " input(s), got ", in.size());
  }
  OpDesc desc_;
};

std::unique_ptr<Op> create_op(const OpDesc& desc);
// The op types create_op knows, sorted: the one list the file readers and the tests use.
std::vector<std::string> op_types();

// Largest tensor (elements per sample) a file may declare: 2^28 floats, 1 GiB per sample, far
// beyond real models (ResNet-18's largest map is 0.8 M), and small enough that no product of
// sizes below it can overflow. docs/ROBUSTNESS.md states it; irnet_infer/format.py checks the
// graph input against the same number.
constexpr int64_t kMaxElements = int64_t(1) << 28;
// Whether c*h*w of non-negative sizes is at most kMaxElements, without overflowing on the way.
inline bool within_limit(const Shape& s) {
  return s.c <= kMaxElements && s.h <= kMaxElements && s.w <= kMaxElements &&
         s.h * s.w <= kMaxElements && s.c * (s.h * s.w) <= kMaxElements;
}

// Shared geometry of 2-D windows (convolution and pooling).
struct Window {
  int64_t kh, kw, sh, sw, ph, pw;
  static Window from(const OpDesc& d);
  // Output size of a window sliding over a map, checked to be at least 1.
  Shape output(const OpDesc& d, const Shape& in, int64_t out_channels) const;
  // The input rows [ys, y1) and columns [xs, x1) that output pixel (oy, ox)'s window covers in
  // an h x w map: the window clipped to the map (padded cells are none of them).
  struct Cells {
    int64_t ys, y1, xs, x1;
  };
  Cells cells(int64_t oy, int64_t ox, int64_t h, int64_t w) const {
    const int64_t y0 = oy * sh - ph, x0 = ox * sw - pw;
    return {y0 > 0 ? y0 : 0, y0 + kh < h ? y0 + kh : h, x0 > 0 ? x0 : 0, x0 + kw < w ? x0 + kw : w};
  }
};

}  // namespace irnet
