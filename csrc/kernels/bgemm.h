// Binary GEMM: count(i, j) = popcount(A[i] XOR B[j]) summed over k_words 64-bit words, for
// i < m, j < n, turned into float outputs by the fused output transform below.
//
// A is indirect (BgemmLhs): word k of row i is read through two offset tables, so a
// convolution reads its taps in place from the packed input and never copies an im2col
// matrix. B is packed once per layer by bgemm_pack_b into panels of NR columns: panel p holds,
// for each word k, the NR words B[p*NR + 0..NR-1][k] (columns past n are zero), or for a
// kernel with 32-bit lanes their NR low halves and then their NR high halves, or for a kernel
// with 4-bit lanes (nibble lookups) their NR low nibbles (w & 0x0f0f...) and then their NR high
// nibbles ((w >> 4) & 0x0f0f...), two words per word. Each kernel
// broadcasts a word (or half word) of A against NR of B, so any k_words works without
// horizontal sums, and all MR x NR counts stay in registers.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace irnet {

// What the kernel does with each count, per output element (i, j):
//   dot = k_bits - 2 * count - (correction[i] ? correction[i][j] : 0)
//   y   = fma(dot, mul[j], bias[j])  (+ residual[i * ldo + j])  then clamped to [lo, hi]
// so the op's per-channel scale, folded BatchNorm, exact padding correction, residual add and
// hardtanh all happen while the tile is in registers. The multiply-add is one fused rounding on
// every ISA, as PyTorch's x86 BatchNorm rounds fma(conv, scale, shift) (ops/batch_norm.cpp).
// The math behind mul/bias is in ops/bconv2d.cpp; kernels only apply it.
struct BgemmOutput {
  int32_t k_bits;
  const float* mul;
  const float* bias;
  const int32_t* const* correction;  // [m] row pointers (null = none), or null for no rows
  const float* residual;             // null, or [m x ldo]
  float lo, hi;
  float* out;
  size_t ldo;
  // Column j of a kernel call is column col + j of mul, bias, correction, residual and out:
  // threads can split the output channels of one row block.
  size_t col = 0;
};

// Word k of row i is base[row_offsets[i] + k_offsets[k]]. A row-major matrix with row stride
// lda has row_offsets[i] = i * lda and k_offsets[k] = k. A 3x3 convolution over a zero-bordered
// packed input has row_offsets[i] = the first tap of output pixel i and k_offsets = the taps'
// distances from it, which are the same for every pixel.
struct BgemmLhs {
  const uint64_t* base;
  const uint32_t* row_offsets;  // [m]
  const uint32_t* k_offsets;    // [k_words]
  size_t k_words;
  uint64_t word(size_t i, size_t k) const { return base[size_t(row_offsets[i]) + k_offsets[k]]; }
};

// Contract of every kernel's run(m, n, a, packed_b, out); the op checks it where it calls
// (bgemm_contract_violation below; k_bits once at load, in every build):
//  - 1 <= k_words and 0 < k_bits <= 64 * k_words: the 64 * k_words - k_bits bit positions that
//    are no real product (wherever they lie, e.g. each tap's channel tail) are 0 in A and B
//    alike, so they count 0 in popcount(A XOR B);
//  - k_bits < 2^24 (kBgemmMaxKBits): the AVX-512 epilogue computes k_bits - 2 * count with one
//    float FMA, exact only for integers below 2^24; it also keeps every count in int32;
//  - |correction[i][j]| <= k_bits, so the corrected integer dot fits int32;
//  - packed_b is bgemm_pack_b's output for this kernel, advanced by whole panels: a call over
//    output columns [col, col + n) passes packed_b + bgemm_packed_offset(kernel, col, k_words)
//    with col a multiple of nr;
//  - mul, bias and each correction row hold col + n values; out and residual rows are ldo
//    floats apart with ldo >= col + n, and out overlaps none of the inputs;
//  - every base[row_offsets[i] + k_offsets[k]] (i < m, k < k_words) is readable; the offsets
//    are 32-bit, so A spans fewer than 2^32 words;
//  - m >= 1 and n >= 1; no alignment is required of any pointer.
constexpr int32_t kBgemmMaxKBits = (int32_t(1) << 24) - 1;

struct BgemmKernel {
  size_t nr;      // panel width the packed B must have
  int lane_bits;  // 64; 32: the kernel counts in 32-bit lanes (B panels of half words); 4: in
                  // nibbles (B panels of split nibbles, two words per word)
  void (*run)(size_t m, size_t n, const BgemmLhs& a, const uint64_t* packed_b, const BgemmOutput& out);
};

// Applies BgemmOutput to one element; the SIMD kernels' epilogues compute the same in the same
// order (integer dot, one fused multiply-add, optional residual add, clamp).
inline float bgemm_output_value(const BgemmOutput& o, size_t i, size_t j, int64_t count) {
  j += o.col;
  int32_t dot = o.k_bits - 2 * int32_t(count);
  if (o.correction && o.correction[i]) dot -= o.correction[i][j];
  float y = std::fma(float(dot), o.mul[j], o.bias[j]);
  if (o.residual) y += o.residual[i * o.ldo + j];
  return y < o.lo ? o.lo : (y > o.hi ? o.hi : y);
}

// The loops the SIMD kernels share: panels of NR output channels, then rows MR at a time, and
// one row at a time for the rest. A tile computes rows [i0, i0+rows) x columns [j0, j0+cols).
using BgemmTileFn = void (*)(const BgemmLhs& a, const uint64_t* panel, const BgemmOutput& out,
                             size_t i0, size_t j0, size_t cols);
template <size_t NR, size_t MR>
inline void bgemm_tiles(size_t m, size_t n, const BgemmLhs& a, const uint64_t* packed_b,
                        const BgemmOutput& out, BgemmTileFn rows_mr, BgemmTileFn rows_1) {
  for (size_t j0 = 0; j0 < n; j0 += NR) {
    const uint64_t* panel = packed_b + (j0 / NR) * a.k_words * NR;
    const size_t cols = n - j0 < NR ? n - j0 : NR;
    size_t i = 0;
    for (; i + MR <= m; i += MR) rows_mr(a, panel, out, i, j0, cols);
    for (; i < m; ++i) rows_1(a, panel, out, i, j0, cols);
  }
}

// The first broken clause of the contract above that is cheap to test (sizes, k_bits, column
// offset; not the pointers' extents), or null when none is. ops/ assert it per call in
// builds with IRNET_CHECK_CONTRACTS (the sanitizer build CI runs) and check k_bits at load.
inline const char* bgemm_contract_violation(size_t n, const BgemmLhs& a, const BgemmOutput& o,
                                            const BgemmKernel& kernel) {
  if (n == 0 || a.k_words == 0) return "n and k_words must be at least 1";
  if (o.k_bits > kBgemmMaxKBits) return "k_bits must be below 2^24";
  if (o.k_bits <= 0 || size_t(o.k_bits) > 64 * a.k_words) return "k_bits must lie in [1, 64 * k_words]";
  if (o.col % kernel.nr != 0) return "col must be a multiple of the kernel's nr";
  if (o.ldo < o.col + n) return "ldo must be at least col + n";
  return nullptr;
}

// A word split for a kernel with 4-bit lanes: its low nibbles (w & kBgemmLowNibbles) and its
// high nibbles ((w >> 4) & kBgemmLowNibbles), B by bgemm_pack_b and A by the kernel itself.
constexpr uint64_t kBgemmLowNibbles = 0x0f0f0f0f0f0f0f0fULL;

// Where output column col (a multiple of nr) starts in bgemm_pack_b's output for `kernel`.
inline size_t bgemm_packed_offset(const BgemmKernel& kernel, size_t col, size_t k_words) {
  return col * k_words * (kernel.lane_bits == 4 ? 2 : 1);
}

// B (n rows of k_words words) in the panels `kernel` reads; panel p starts at word
// bgemm_packed_offset(kernel, p * nr, k_words).
std::vector<uint64_t> bgemm_pack_b(size_t n, size_t k_words, const BgemmKernel& kernel, const uint64_t* b);

#define IRN_BGEMM_KERNEL(name) \
  void name(size_t m, size_t n, const BgemmLhs& a, const uint64_t* packed_b, const BgemmOutput& out)
#define IRN_BGEMM_UKERNEL(isa, name, nr, lane_bits) IRN_BGEMM_KERNEL(name);
#include "kernels/bgemm.inc"
#undef IRN_BGEMM_UKERNEL

}  // namespace irnet
