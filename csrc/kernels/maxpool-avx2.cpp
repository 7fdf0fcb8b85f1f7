// 32 channels per pass in four ymm registers; a NaN tap wins through an unordered-compare
// blend (max_ps alone would drop a NaN in its first operand).
#include <immintrin.h>

#include "kernels/maxpool.h"

namespace irnet {

namespace {

inline __m256 max_nan(__m256 acc, __m256 v) {
  return _mm256_blendv_ps(_mm256_max_ps(v, acc), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

}  // namespace

void irn_maxpool_f32_ukernel_c32__avx2(const float* const* taps, size_t n_taps, size_t channels, float* out) {
  const __m256 lowest = _mm256_set1_ps(-__builtin_inff());
  size_t c = 0;
  for (; c + 32 <= channels; c += 32) {
    __m256 m0 = lowest, m1 = lowest, m2 = lowest, m3 = lowest;
    for (size_t t = 0; t < n_taps; ++t) {
      const float* p = taps[t] + c;
      m0 = max_nan(m0, _mm256_loadu_ps(p));
      m1 = max_nan(m1, _mm256_loadu_ps(p + 8));
      m2 = max_nan(m2, _mm256_loadu_ps(p + 16));
      m3 = max_nan(m3, _mm256_loadu_ps(p + 24));
    }
    _mm256_storeu_ps(out + c, m0);
    _mm256_storeu_ps(out + c + 8, m1);
    _mm256_storeu_ps(out + c + 16, m2);
    _mm256_storeu_ps(out + c + 24, m3);
  }
  for (; c < channels; c += 8) {  // 8 at a time, the last ones masked
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(channels - c)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 m = lowest;
    for (size_t t = 0; t < n_taps; ++t) m = max_nan(m, _mm256_maskload_ps(taps[t] + c, mask));
    _mm256_maskstore_ps(out + c, mask, m);
  }
}

}  // namespace irnet
