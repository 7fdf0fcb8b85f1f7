// Float GEMM for the real-valued layers (stems, downsample shortcuts, classifier):
// acc[m x n] = A[m x k] * B[k x n], turned into outputs by the fused output transform below.
//
// A is read in place (SgemmLhs): rows are lda floats apart and k runs over segments of
// contiguous floats, so a convolution reads its taps straight from a zero-bordered NHWC input
// instead of copying an im2col matrix. B is packed once per layer by sgemm_pack_b into panels
// of NR columns (panel p holds, for each k, B[k][p*NR .. p*NR+NR-1], zero past n), so the
// kernels read B sequentially and unmasked.
#pragma once
#include <cstddef>
#include <vector>

#include "aligned.h"

namespace irnet {

// Element (i, k) of A, with k = s * seg_len + t, is base[i * lda + seg_offsets[s] + t]. A
// row-major matrix is one segment at offset 0. A convolution reads the pixels of one output
// row: lda = stride * Cin, and segment s is kernel row s, whose kw * Cin taps are adjacent.
struct SgemmLhs {
  const float* base;
  size_t lda;
  const size_t* seg_offsets;  // [segs]
  size_t segs, seg_len;
  float at(size_t i, size_t k) const { return base[i * lda + seg_offsets[k / seg_len] + k % seg_len]; }
};

// Per output element (i, j): y = acc * mul[j] + bias[j] (+ residual[i * ldo + j]), clamped to
// [lo, hi], written to out[i * ldo + j]. Column j of a kernel call is column col + j of mul,
// bias, residual and out, so threads can split the output channels of one row block.
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

struct SgemmKernel {
  size_t nr;  // panel width the packed B must have
  void (*run)(size_t m, size_t n, const SgemmLhs& a, const float* packed_b, const SgemmOutput& out);
};

// Packed B starts on a cache line, so that (with NR a multiple of 16 floats) no 64-byte row of
// a panel straddles two lines: split loads cost the AVX-512 kernel a few percent.
using SgemmPackedB = AlignedVector<float>;

SgemmPackedB sgemm_pack_b(size_t k, size_t n, size_t nr, const float* b);

#define IRN_SGEMM_KERNEL(name) \
  void name(size_t m, size_t n, const SgemmLhs& a, const float* packed_b, const SgemmOutput& out)
IRN_SGEMM_KERNEL(irn_sgemm_ukernel_1x8__scalar);
IRN_SGEMM_KERNEL(irn_sgemm_ukernel_7x64__avx512);
IRN_SGEMM_KERNEL(irn_sgemm_ukernel_6x16__avx2);
IRN_SGEMM_KERNEL(irn_sgemm_ukernel_4x16__neon);

}  // namespace irnet
