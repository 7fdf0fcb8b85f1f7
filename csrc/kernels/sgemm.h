// Float GEMM for the real-valued layers (stems, 1W/32A convs, downsample shortcuts, classifier):
// acc[m x n] = A[m x k] * B[k x n], turned into outputs by the fused output transform below.
//
// A is read in place (SgemmLhs): row i starts at its own pointer and k runs over segments of
// contiguous floats, so a convolution reads its taps straight from a zero-bordered NHWC input
// instead of copying an im2col matrix, and one tile of rows may span several output rows. B is
// packed once per layer by sgemm_pack_b into panels of NR columns (panel p holds, for each k,
// B[k][p*NR .. p*NR+NR-1], zero past n), so the kernels read B sequentially and unmasked.
//
// The loops over panels and row tiles are written once (SgemmKernel::run, sgemm.cpp); each
// ISA provides only the micro-kernel, which computes one tile of at most MR x NR outputs.
#pragma once
#include <cstddef>
#include <vector>

#include "aligned.h"

namespace irnet {

// Element (i, k) of A, with k = s * seg_len + t, is rows[i][seg_offsets[s] + t]. A row-major
// matrix is rows[i] = base + i * lda and one segment at offset 0. A convolution's row i is an
// output pixel, rows[i] its first tap, and segment s kernel row s, whose kw * Cin taps are
// adjacent in an NHWC (zero-bordered) input.
struct SgemmLhs {
  const float* const* rows;   // [m]
  const size_t* seg_offsets;  // [segs]
  size_t segs, seg_len;
  float at(size_t i, size_t k) const { return rows[i][seg_offsets[k / seg_len] + k % seg_len]; }
};

// Per output element (i, j): y = acc * mul[j] + bias[j] (+ residual[i * ldo + j]), clamped to
// [lo, hi], written to out[i * ldo + j]. Column j of a call is column col + j of mul, bias,
// residual and out, so threads can split the output channels of one row block.
struct SgemmOutput {
  const float* mul;
  const float* bias;
  const float* residual;  // null, or [m x ldo]
  float lo, hi;
  float* out;
  size_t ldo;
  size_t col = 0;
};

// The SIMD kernels' epilogues compute the same in the same order: one multiply, one add (never
// fused), the optional residual add, then the clamp.
inline float sgemm_output_value(const SgemmOutput& o, size_t i, size_t j, float acc) {
  j += o.col;
  float y = acc * o.mul[j] + o.bias[j];
  if (o.residual) y += o.residual[i * o.ldo + j];
  return y < o.lo ? o.lo : (y > o.hi ? o.hi : y);
}

// One micro-kernel call: output rows [i0, i0 + mr) x columns [j0, j0 + nc) of the caller's
// SgemmOutput, over all of k. The kernel's contract (sgemm_contract_violation checks it):
//   1 <= mr <= MR and 1 <= nc <= NR of the kernel;
//   a[0 .. mr) are the tile's rows (a row pointer each, readable at every a_offsets[s] + t,
//   t < seg_len); segs >= 1 and seg_len >= 1;
//   b is the first of k = segs * seg_len rows of one packed panel, NR floats a row, NR
//   readable (zero past the matrix's n) in every row, starting on a cache line (on NR floats
//   when NR floats are less than a line);
//   out.out, mul, bias (and residual) hold column out.col + j0 + nc - 1 of row i0 + mr - 1.
// Each output is one sum in k order (FMA or multiply-add per the ISA), then sgemm_output_value's
// steps: the accumulation order, and so the result, does not depend on how rows and columns
// are split into tiles or threads.
struct SgemmTile {
  size_t mr, nc;
  const float* const* a;    // [mr]
  const size_t* a_offsets;  // [segs]
  size_t segs, seg_len;
  const float* b;
  size_t i0, j0;
};

using SgemmUkernelFn = void (*)(const SgemmTile& tile, const SgemmOutput& out);

// Empty when the call obeys the contract above, else the first precondition it breaks.
const char* sgemm_contract_violation(size_t mr_max, size_t nr, const SgemmTile& tile);

struct SgemmKernel {
  size_t mr, nr;  // the largest tile a call computes; nr is the panel width packed B must have
  SgemmUkernelFn ukernel;
  // All m x n outputs: panels of NR columns, and in each the rows in tiles of at most MR,
  // balanced (13 rows with MR 6 are 5 + 4 + 4, never 6 + 6 + 1: a one-row tile has too few
  // accumulators to hide the FMA latency). packed_b starts at column col of a whole packing.
  void run(size_t m, size_t n, const SgemmLhs& a, const float* packed_b, const SgemmOutput& out) const;
};

// Packed B starts on a cache line, so that (with NR a multiple of 16 floats) no 64-byte row of
// a panel straddles two lines: split loads cost the AVX-512 kernel a few percent.
using SgemmPackedB = AlignedVector<float>;

SgemmPackedB sgemm_pack_b(size_t k, size_t n, size_t nr, const float* b);

// The micro-kernels, one per line of sgemm.inc: irn_sgemm_f32_ukernel_<MR>x<NR>__<isa>.
#define IRN_SGEMM_UKERNEL(isa, mr, nr, fn) void fn(const SgemmTile& tile, const SgemmOutput& out);
#include "kernels/sgemm.inc"
#undef IRN_SGEMM_UKERNEL

// kSgemm_<isa>: the kernel each ISA's configuration runs (config.cpp), from the same list.
#define IRN_SGEMM_UKERNEL(isa, mr, nr, fn) inline constexpr SgemmKernel kSgemm_##isa{mr, nr, fn};
#include "kernels/sgemm.inc"
#undef IRN_SGEMM_UKERNEL

}  // namespace irnet
