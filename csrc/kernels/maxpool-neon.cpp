// NEON (aarch64): 16 channels per pass in four q registers. FMAX would already let a NaN win,
// but it orders -0.0 below +0.0 where the portable kernel keeps the first of two equal taps;
// a compare-and-select with the portable kernel's test keeps every ISA's outputs bit-identical.
#include <arm_neon.h>

#include "kernels/maxpool.h"

namespace irnet {

namespace {

inline float32x4_t max_nan(float32x4_t acc, float32x4_t v) {
  const uint32x4_t take = vorrq_u32(vcgtq_f32(v, acc), vmvnq_u32(vceqq_f32(v, v)));
  return vbslq_f32(take, v, acc);
}

}  // namespace

void irn_maxpool_f32_ukernel_c16__neon(const float* const* taps, size_t n_taps, size_t channels, float* out) {
  const float32x4_t lowest = vdupq_n_f32(-__builtin_inff());
  size_t c = 0;
  for (; c + 16 <= channels; c += 16) {
    float32x4_t m0 = lowest, m1 = lowest, m2 = lowest, m3 = lowest;
    for (size_t t = 0; t < n_taps; ++t) {
      const float* p = taps[t] + c;
      m0 = max_nan(m0, vld1q_f32(p));
      m1 = max_nan(m1, vld1q_f32(p + 4));
      m2 = max_nan(m2, vld1q_f32(p + 8));
      m3 = max_nan(m3, vld1q_f32(p + 12));
    }
    vst1q_f32(out + c, m0);
    vst1q_f32(out + c + 4, m1);
    vst1q_f32(out + c + 8, m2);
    vst1q_f32(out + c + 12, m3);
  }
  for (; c + 4 <= channels; c += 4) {
    float32x4_t m = lowest;
    for (size_t t = 0; t < n_taps; ++t) m = max_nan(m, vld1q_f32(taps[t] + c));
    vst1q_f32(out + c, m);
  }
  for (; c < channels; ++c) {  // the last 1-3 channels, with the portable kernel's test
    float m = -__builtin_inff();
    for (size_t t = 0; t < n_taps; ++t) {
      const float v = taps[t][c];
      m = v > m || v != v ? v : m;
    }
    out[c] = m;
  }
}

}  // namespace irnet
