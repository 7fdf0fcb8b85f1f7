// AVX2 + FMA: a 6 x 16 tile of C in 12 ymm accumulators over the packed B panel; column tails
// only mask stores.
#include <immintrin.h>

#include "kernels/sgemm.h"

namespace irnet {

namespace {

constexpr size_t NR = 16;

inline __m256i tail_mask(size_t left) {
  const int n = left >= 8 ? 8 : int(left);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

template <size_t MR>
inline void tile(size_t k, const float* a, size_t lda, const float* panel, float* c, size_t ldc,
                 size_t cols) {
  __m256 acc[MR][2];
  for (size_t i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (size_t p = 0; p < k; ++p) {
    const __m256 b0 = _mm256_loadu_ps(panel + p * NR);
    const __m256 b1 = _mm256_loadu_ps(panel + p * NR + 8);
    for (size_t i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i * lda + p);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  const __m256i m0 = tail_mask(cols), m1 = tail_mask(cols > 8 ? cols - 8 : 0);
  for (size_t i = 0; i < MR; ++i) {
    _mm256_maskstore_ps(c + i * ldc, m0, acc[i][0]);
    _mm256_maskstore_ps(c + i * ldc + 8, m1, acc[i][1]);
  }
}

}  // namespace

IRN_SGEMM_KERNEL(irn_sgemm_ukernel_6x16__avx2) {
  for (size_t j0 = 0; j0 < n; j0 += NR) {
    const float* panel = packed_b + (j0 / NR) * k * NR;
    const size_t cols = n - j0 < NR ? n - j0 : NR;
    size_t i = 0;
    for (; i + 6 <= m; i += 6) tile<6>(k, a + i * lda, lda, panel, c + i * ldc + j0, ldc, cols);
    for (; i < m; ++i) tile<1>(k, a + i * lda, lda, panel, c + i * ldc + j0, ldc, cols);
  }
}

}  // namespace irnet
