// NEON (aarch64): a 4 x 16 tile of C in 16 q accumulators over the packed B panel. A is read
// four k at a time into one q register per row and multiplied by lane (FMLA by element), so a
// step of four k costs 4 A loads + 16 B loads for 64 FMLAs; 24 of the 32 q registers are live.
// Full tiles run the epilogue in registers; a column tail finishes through the portable
// per-element transform, which computes the same operations in the same order.
#include <arm_neon.h>

#include "kernels/sgemm.h"

namespace irnet {

namespace {

constexpr size_t NR = 16;

// Loops over the tile's rows and vectors are unrolled by request: left to itself, GCC 12 keeps
// the accumulator array on the stack and stores it back every step of k.
#define IRN_UNROLL _Pragma("GCC unroll 16")

template <size_t MR>
inline void tile(const SgemmLhs& a, const float* panel, const SgemmOutput& o, size_t i0, size_t j0,
                 size_t cols) {
  float32x4_t acc[MR][4];
  IRN_UNROLL for (size_t i = 0; i < MR; ++i)
    IRN_UNROLL for (size_t v = 0; v < 4; ++v) acc[i][v] = vdupq_n_f32(0.0f);
  const float* rows = a.base + i0 * a.lda;
  const size_t lda = a.lda;
  for (size_t s = 0; s < a.segs; ++s) {
    const float* x = rows + a.seg_offsets[s];
    const float* b = panel + s * a.seg_len * NR;
    size_t t = 0;
    for (; t + 4 <= a.seg_len; t += 4) {
      float32x4_t ai[MR];
      IRN_UNROLL for (size_t i = 0; i < MR; ++i) ai[i] = vld1q_f32(x + i * lda + t);
#define IRN_SGEMM_NEON_STEP(l)                                                   \
  {                                                                              \
    const float* bl = b + (t + l) * NR;                                          \
    const float32x4_t b0 = vld1q_f32(bl), b1 = vld1q_f32(bl + 4);                \
    const float32x4_t b2 = vld1q_f32(bl + 8), b3 = vld1q_f32(bl + 12);           \
    IRN_UNROLL for (size_t i = 0; i < MR; ++i) {                                            \
      acc[i][0] = vfmaq_laneq_f32(acc[i][0], b0, ai[i], l);                      \
      acc[i][1] = vfmaq_laneq_f32(acc[i][1], b1, ai[i], l);                      \
      acc[i][2] = vfmaq_laneq_f32(acc[i][2], b2, ai[i], l);                      \
      acc[i][3] = vfmaq_laneq_f32(acc[i][3], b3, ai[i], l);                      \
    }                                                                            \
  }
      IRN_SGEMM_NEON_STEP(0)
      IRN_SGEMM_NEON_STEP(1)
      IRN_SGEMM_NEON_STEP(2)
      IRN_SGEMM_NEON_STEP(3)
#undef IRN_SGEMM_NEON_STEP
    }
    for (; t < a.seg_len; ++t) {
      const float* bl = b + t * NR;
      const float32x4_t b0 = vld1q_f32(bl), b1 = vld1q_f32(bl + 4);
      const float32x4_t b2 = vld1q_f32(bl + 8), b3 = vld1q_f32(bl + 12);
      IRN_UNROLL for (size_t i = 0; i < MR; ++i) {
        const float32x4_t ai = vld1q_dup_f32(x + i * lda + t);
        acc[i][0] = vfmaq_f32(acc[i][0], ai, b0);
        acc[i][1] = vfmaq_f32(acc[i][1], ai, b1);
        acc[i][2] = vfmaq_f32(acc[i][2], ai, b2);
        acc[i][3] = vfmaq_f32(acc[i][3], ai, b3);
      }
    }
  }
  const size_t j = o.col + j0;
  if (cols < NR) {
    IRN_UNROLL for (size_t i = 0; i < MR; ++i) {
      float sums[NR];
      IRN_UNROLL for (size_t v = 0; v < 4; ++v) vst1q_f32(sums + 4 * v, acc[i][v]);
      for (size_t c = 0; c < cols; ++c) o.out[(i0 + i) * o.ldo + j + c] = sgemm_output_value(o, i0 + i, j0 + c, sums[c]);
    }
    return;
  }
  float32x4_t mul[4], bias[4];
  IRN_UNROLL for (size_t v = 0; v < 4; ++v) {
    mul[v] = vld1q_f32(o.mul + j + 4 * v);
    bias[v] = vld1q_f32(o.bias + j + 4 * v);
  }
  const float32x4_t lo = vdupq_n_f32(o.lo), hi = vdupq_n_f32(o.hi);
  IRN_UNROLL for (size_t i = 0; i < MR; ++i) {
    const size_t at = (i0 + i) * o.ldo + j;
    IRN_UNROLL for (size_t v = 0; v < 4; ++v) {
      float32x4_t y = vaddq_f32(vmulq_f32(acc[i][v], mul[v]), bias[v]);
      if (o.residual) y = vaddq_f32(y, vld1q_f32(o.residual + at + 4 * v));
      // FMAX/FMIN return NaN for a NaN operand, as the portable comparison chain passes it on.
      y = vminq_f32(hi, vmaxq_f32(lo, y));
      vst1q_f32(o.out + at + 4 * v, y);
    }
  }
}

}  // namespace

IRN_SGEMM_KERNEL(irn_sgemm_ukernel_4x16__neon) {
  const size_t k = a.segs * a.seg_len;
  for (size_t j0 = 0; j0 < n; j0 += NR) {
    const float* panel = packed_b + (j0 / NR) * k * NR;
    const size_t cols = n - j0 < NR ? n - j0 : NR;
    size_t i = 0;
    for (; i + 4 <= m; i += 4) tile<4>(a, panel, out, i, j0, cols);
    for (; i < m; ++i) tile<1>(a, panel, out, i, j0, cols);
  }
}

}  // namespace irnet
