// 4 words (256 channels) per ymm register; the last 1-3 words through a masked load and store.
#include <immintrin.h>

#include "kernels/bitpool.h"

namespace irnet {

void irn_bitpool_b1_ukernel_c256__avx2(const uint64_t* const* taps, size_t n_taps, size_t words, uint64_t* out) {
  size_t w = 0;
  for (; w + 4 <= words; w += 4) {
    __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(taps[0] + w));
    for (size_t t = 1; t < n_taps; ++t)
      m = _mm256_and_si256(m, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(taps[t] + w)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + w), m);
  }
  if (w == words) return;
  const __m256i mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x(int64_t(words - w)), _mm256_setr_epi64x(0, 1, 2, 3));
  const auto at = [&](size_t t) {
    return _mm256_maskload_epi64(reinterpret_cast<const long long*>(taps[t] + w), mask);
  };
  __m256i m = at(0);
  for (size_t t = 1; t < n_taps; ++t) m = _mm256_and_si256(m, at(t));
  _mm256_maskstore_epi64(reinterpret_cast<long long*>(out + w), mask, m);
}

}  // namespace irnet
