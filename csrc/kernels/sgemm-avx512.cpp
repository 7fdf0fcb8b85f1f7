// AVX-512 FMA: an 8 x 32 tile of C in 16 zmm accumulators; each step broadcasts one A value per
// row against two 16-float rows of B. Column tails use masked loads and stores.
#include <immintrin.h>

#include "kernels/sgemm.h"

namespace irnet {

namespace {

template <size_t MR, size_t NV>
inline void tile(size_t k, const float* a, size_t lda, const float* b, size_t ldb, float* c,
                 size_t ldc, size_t cols) {
  __mmask16 mask[NV];
  for (size_t v = 0; v < NV; ++v) {
    const size_t left = cols > v * 16 ? cols - v * 16 : 0;
    mask[v] = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
  }
  __m512 acc[MR][NV];
  for (size_t i = 0; i < MR; ++i)
    for (size_t v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (size_t p = 0; p < k; ++p) {
    __m512 bv[NV];
    for (size_t v = 0; v < NV; ++v) bv[v] = _mm512_maskz_loadu_ps(mask[v], b + p * ldb + v * 16);
    for (size_t i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i * lda + p]);
      for (size_t v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
  }
  for (size_t i = 0; i < MR; ++i)
    for (size_t v = 0; v < NV; ++v) _mm512_mask_storeu_ps(c + i * ldc + v * 16, mask[v], acc[i][v]);
}

template <size_t MR>
inline void rows(size_t k, const float* a, size_t lda, const float* b, size_t ldb, float* c,
                 size_t ldc, size_t cols) {
  if (cols > 16) tile<MR, 2>(k, a, lda, b, ldb, c, ldc, cols);
  else tile<MR, 1>(k, a, lda, b, ldb, c, ldc, cols);
}

}  // namespace

void irn_sgemm_ukernel_8x32__avx512(size_t m, size_t n, size_t k, const float* a, size_t lda,
                                    const float* b, size_t ldb, float* c, size_t ldc) {
  for (size_t j0 = 0; j0 < n; j0 += 32) {
    const size_t cols = n - j0 < 32 ? n - j0 : 32;
    size_t i = 0;
    for (; i + 8 <= m; i += 8) rows<8>(k, a + i * lda, lda, b + j0, ldb, c + i * ldc + j0, ldc, cols);
    for (; i < m; ++i) rows<1>(k, a + i * lda, lda, b + j0, ldb, c + i * ldc + j0, ldc, cols);
  }
}

}  // namespace irnet
