// 4 words (256 channels) per ymm register, then 2 in an xmm register and the last one alone:
// no masked loads or stores (AMD's masked stores are microcoded: with the usual 2-8 words a
// masked tail made the kernel slower than the scalar one).
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
  if (w + 2 <= words) {
    __m128i m = _mm_loadu_si128(reinterpret_cast<const __m128i*>(taps[0] + w));
    for (size_t t = 1; t < n_taps; ++t)
      m = _mm_and_si128(m, _mm_loadu_si128(reinterpret_cast<const __m128i*>(taps[t] + w)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + w), m);
    w += 2;
  }
  if (w < words) {
    uint64_t m = taps[0][w];
    for (size_t t = 1; t < n_taps; ++t) m &= taps[t][w];
    out[w] = m;
  }
}

}  // namespace irnet
