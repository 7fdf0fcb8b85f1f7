// 64 channels per pass in four zmm registers; a NaN tap wins through an unordered-compare
// mask (max_ps alone would drop a NaN in its first operand).
#include <immintrin.h>

#include "kernels/maxpool.h"

namespace irnet {

namespace {

inline __m512 max_nan(__m512 acc, __m512 v) {
  return _mm512_mask_mov_ps(_mm512_max_ps(v, acc), _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
}

}  // namespace

void irn_maxpool_f32_ukernel_c64__avx512(const float* const* taps, size_t n_taps, size_t channels, float* out) {
  const __m512 lowest = _mm512_set1_ps(-__builtin_inff());
  size_t c = 0;
  for (; c + 64 <= channels; c += 64) {
    __m512 m0 = lowest, m1 = lowest, m2 = lowest, m3 = lowest;
    for (size_t t = 0; t < n_taps; ++t) {
      const float* p = taps[t] + c;
      m0 = max_nan(m0, _mm512_loadu_ps(p));
      m1 = max_nan(m1, _mm512_loadu_ps(p + 16));
      m2 = max_nan(m2, _mm512_loadu_ps(p + 32));
      m3 = max_nan(m3, _mm512_loadu_ps(p + 48));
    }
    _mm512_storeu_ps(out + c, m0);
    _mm512_storeu_ps(out + c + 16, m1);
    _mm512_storeu_ps(out + c + 32, m2);
    _mm512_storeu_ps(out + c + 48, m3);
  }
  for (; c < channels; c += 16) {
    const __mmask16 mask = channels - c >= 16 ? __mmask16(0xffff) : __mmask16((1u << (channels - c)) - 1);
    __m512 m = lowest;
    for (size_t t = 0; t < n_taps; ++t) m = max_nan(m, _mm512_maskz_loadu_ps(mask, taps[t] + c));
    _mm512_mask_storeu_ps(out + c, mask, m);
  }
}

}  // namespace irnet
