// AVX-512 FMA: a 12 x 32 tile of C in 24 zmm accumulators; each k step loads two 16-float
// rows of the packed B panel and broadcasts one A value per row. Column tails only mask stores.
#include <immintrin.h>

#include "kernels/sgemm.h"

namespace irnet {

namespace {

constexpr size_t NR = 32;

template <size_t MR>
inline void tile(size_t k, const float* a, size_t lda, const float* panel, float* c, size_t ldc,
                 size_t cols) {
  __m512 acc[MR][2];
  for (size_t i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (size_t p = 0; p < k; ++p) {
    const __m512 b0 = _mm512_loadu_ps(panel + p * NR);
    const __m512 b1 = _mm512_loadu_ps(panel + p * NR + 16);
    for (size_t i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i * lda + p]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  const __mmask16 m0 = cols >= 16 ? __mmask16(0xffff) : __mmask16((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32 ? __mmask16(0xffff) : cols <= 16 ? __mmask16(0) : __mmask16((1u << (cols - 16)) - 1);
  for (size_t i = 0; i < MR; ++i) {
    _mm512_mask_storeu_ps(c + i * ldc, m0, acc[i][0]);
    _mm512_mask_storeu_ps(c + i * ldc + 16, m1, acc[i][1]);
  }
}

}  // namespace

IRN_SGEMM_KERNEL(irn_sgemm_ukernel_12x32__avx512) {
  for (size_t j0 = 0; j0 < n; j0 += NR) {
    const float* panel = packed_b + (j0 / NR) * k * NR;
    const size_t cols = n - j0 < NR ? n - j0 : NR;
    size_t i = 0;
    for (; i + 12 <= m; i += 12) tile<12>(k, a + i * lda, lda, panel, c + i * ldc + j0, ldc, cols);
    for (; i + 4 <= m; i += 4) tile<4>(k, a + i * lda, lda, panel, c + i * ldc + j0, ldc, cols);
    for (; i < m; ++i) tile<1>(k, a + i * lda, lda, panel, c + i * ldc + j0, ldc, cols);
  }
}

}  // namespace irnet
