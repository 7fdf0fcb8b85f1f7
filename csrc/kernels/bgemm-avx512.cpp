// AVX-512 VPOPCNTDQ: per word of A, vpxorq with a broadcast + vpopcntq + vpaddq on 8 output
// channels at once; a 4 x 32 tile keeps 16 accumulators in zmm registers.
#include <immintrin.h>

#include "kernels/bgemm.h"

namespace irnet {

namespace {

constexpr size_t NR = 32;

// MR rows x NV vectors of 8 columns; the full tile is MR = 4, NV = 4.
template <size_t MR, size_t NV>
inline void tile(size_t k_words, const uint64_t* a, size_t lda, const uint64_t* panel,
                 int32_t* count, size_t ldc, size_t cols) {
  __m512i acc[MR][NV];
  for (size_t i = 0; i < MR; ++i)
    for (size_t v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_si512();
  for (size_t k = 0; k < k_words; ++k) {
    __m512i b[NV];
    for (size_t v = 0; v < NV; ++v) b[v] = _mm512_loadu_si512(panel + k * NR + v * 8);
    for (size_t i = 0; i < MR; ++i) {
      const __m512i ai = _mm512_set1_epi64(static_cast<long long>(a[i * lda + k]));
      for (size_t v = 0; v < NV; ++v)
        acc[i][v] = _mm512_add_epi64(acc[i][v], _mm512_popcnt_epi64(_mm512_xor_si512(ai, b[v])));
    }
  }
  for (size_t i = 0; i < MR; ++i)
    for (size_t v = 0; v < NV; ++v) {
      const size_t left = cols - v * 8;
      const __mmask8 mask = left >= 8 ? 0xff : __mmask8((1u << left) - 1);
      _mm256_mask_storeu_epi32(count + i * ldc + v * 8, mask, _mm512_cvtepi64_epi32(acc[i][v]));
    }
}

template <size_t MR>
inline void row_tile(size_t k_words, const uint64_t* a, size_t lda, const uint64_t* panel,
                     int32_t* count, size_t ldc, size_t cols) {
  switch ((cols + 7) / 8) {
    case 1: tile<MR, 1>(k_words, a, lda, panel, count, ldc, cols); break;
    case 2: tile<MR, 2>(k_words, a, lda, panel, count, ldc, cols); break;
    case 3: tile<MR, 3>(k_words, a, lda, panel, count, ldc, cols); break;
    default: tile<MR, 4>(k_words, a, lda, panel, count, ldc, cols); break;
  }
}

}  // namespace

void irn_bgemm_i32_ukernel_4x32__avx512(size_t m, size_t n, size_t k_words, const uint64_t* a,
                                        size_t lda, const uint64_t* packed_b, int32_t* count,
                                        size_t ldc) {
  for (size_t j0 = 0; j0 < n; j0 += NR) {
    const uint64_t* panel = packed_b + (j0 / NR) * k_words * NR;
    const size_t cols = n - j0 < NR ? n - j0 : NR;
    size_t i = 0;
    for (; i + 4 <= m; i += 4) row_tile<4>(k_words, a + i * lda, lda, panel, count + i * ldc + j0, ldc, cols);
    for (; i < m; ++i) row_tile<1>(k_words, a + i * lda, lda, panel, count + i * ldc + j0, ldc, cols);
  }
}

}  // namespace irnet
