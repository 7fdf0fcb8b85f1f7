// AVX2 + FMA: a 6 x 16 tile of C in 12 ymm accumulators; column tails use masked loads/stores.
#include <immintrin.h>

#include "kernels/sgemm.h"

namespace irnet {

namespace {

inline __m256i tail_mask(size_t left) {
  const int n = left >= 8 ? 8 : int(left);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

template <size_t MR>
inline void tile(size_t k, const float* a, size_t lda, const float* b, size_t ldb, float* c,
                 size_t ldc, size_t cols) {
  const __m256i m0 = tail_mask(cols), m1 = tail_mask(cols > 8 ? cols - 8 : 0);
  __m256 acc[MR][2];
  for (size_t i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (size_t p = 0; p < k; ++p) {
    const __m256 b0 = _mm256_maskload_ps(b + p * ldb, m0);
    const __m256 b1 = _mm256_maskload_ps(b + p * ldb + 8, m1);
    for (size_t i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i * lda + p);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  for (size_t i = 0; i < MR; ++i) {
    _mm256_maskstore_ps(c + i * ldc, m0, acc[i][0]);
    _mm256_maskstore_ps(c + i * ldc + 8, m1, acc[i][1]);
  }
}

}  // namespace

void irn_sgemm_ukernel_6x16__avx2(size_t m, size_t n, size_t k, const float* a, size_t lda,
                                  const float* b, size_t ldb, float* c, size_t ldc) {
  for (size_t j0 = 0; j0 < n; j0 += 16) {
    const size_t cols = n - j0 < 16 ? n - j0 : 16;
    size_t i = 0;
    for (; i + 6 <= m; i += 6) tile<6>(k, a + i * lda, lda, b + j0, ldb, c + i * ldc + j0, ldc, cols);
    for (; i < m; ++i) tile<1>(k, a + i * lda, lda, b + j0, ldb, c + i * ldc + j0, ldc, cols);
  }
}

}  // namespace irnet
