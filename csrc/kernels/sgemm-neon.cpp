// NEON (aarch64): a tile of up to 4 x 16 outputs in 16 q accumulators over one packed B panel. A is read
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
void tile(const SgemmTile& t, const SgemmOutput& o) {
  float32x4_t acc[MR][4];
  IRN_UNROLL for (size_t i = 0; i < MR; ++i)
    IRN_UNROLL for (size_t v = 0; v < 4; ++v) acc[i][v] = vdupq_n_f32(0.0f);
  for (size_t s = 0; s < t.segs; ++s) {
    const float* x[MR];
    IRN_UNROLL for (size_t i = 0; i < MR; ++i) x[i] = t.a[i] + t.a_offsets[s];
    const float* b = t.b + s * t.seg_len * NR;
    size_t k = 0;
    for (; k + 4 <= t.seg_len; k += 4) {
      float32x4_t ai[MR];
      IRN_UNROLL for (size_t i = 0; i < MR; ++i) ai[i] = vld1q_f32(x[i] + k);
#define IRN_SGEMM_NEON_STEP(l)                                                   \
  {                                                                              \
    const float* bl = b + (k + l) * NR;                                          \
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
    for (; k < t.seg_len; ++k) {
      const float* bl = b + k * NR;
      const float32x4_t b0 = vld1q_f32(bl), b1 = vld1q_f32(bl + 4);
      const float32x4_t b2 = vld1q_f32(bl + 8), b3 = vld1q_f32(bl + 12);
      IRN_UNROLL for (size_t i = 0; i < MR; ++i) {
        const float32x4_t ai = vld1q_dup_f32(x[i] + k);
        acc[i][0] = vfmaq_f32(acc[i][0], ai, b0);
        acc[i][1] = vfmaq_f32(acc[i][1], ai, b1);
        acc[i][2] = vfmaq_f32(acc[i][2], ai, b2);
        acc[i][3] = vfmaq_f32(acc[i][3], ai, b3);
      }
    }
  }
  const size_t j = o.col + t.j0;
  if (t.nc < NR) {
    IRN_UNROLL for (size_t i = 0; i < MR; ++i) {
      float sums[NR];
      IRN_UNROLL for (size_t v = 0; v < 4; ++v) vst1q_f32(sums + 4 * v, acc[i][v]);
      for (size_t c = 0; c < t.nc; ++c)
        o.out[(t.i0 + i) * o.ldo + j + c] = sgemm_output_value(o, t.i0 + i, t.j0 + c, sums[c]);
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
    const size_t at = (t.i0 + i) * o.ldo + j;
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

void irn_sgemm_f32_ukernel_4x16__neon(const SgemmTile& t, const SgemmOutput& out) {
  switch (t.mr) {
    case 1: return tile<1>(t, out);
    case 2: return tile<2>(t, out);
    case 3: return tile<3>(t, out);
    default: return tile<4>(t, out);
  }
}

}  // namespace irnet
