// AVX2 + FMA: a 6 x 16 tile of C in 12 ymm accumulators over the packed B panel. The epilogue
// applies the output transform while the tile is in registers; column tails only mask loads
// and stores.
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
inline void tile(const SgemmLhs& a, const float* panel, const SgemmOutput& o, size_t i0, size_t j0,
                 size_t cols) {
  __m256 acc[MR][2];
  for (size_t i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const float* rows = a.base + i0 * a.lda;
  const size_t lda = a.lda;
  for (size_t s = 0; s < a.segs; ++s) {
    const float* x = rows + a.seg_offsets[s];
    const float* b = panel + s * a.seg_len * NR;
    for (size_t t = 0; t < a.seg_len; ++t) {
      const __m256 b0 = _mm256_loadu_ps(b + t * NR);
      const __m256 b1 = _mm256_loadu_ps(b + t * NR + 8);
      for (size_t i = 0; i < MR; ++i) {
        const __m256 ai = _mm256_set1_ps(x[i * lda + t]);
        acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
      }
    }
  }
  const size_t j = o.col + j0;
  const __m256i m0 = tail_mask(cols), m1 = tail_mask(cols > 8 ? cols - 8 : 0);
  const __m256 mul0 = _mm256_maskload_ps(o.mul + j, m0), mul1 = _mm256_maskload_ps(o.mul + j + 8, m1);
  const __m256 bias0 = _mm256_maskload_ps(o.bias + j, m0), bias1 = _mm256_maskload_ps(o.bias + j + 8, m1);
  const __m256 lo = _mm256_set1_ps(o.lo), hi = _mm256_set1_ps(o.hi);
  for (size_t i = 0; i < MR; ++i) {
    const size_t at = (i0 + i) * o.ldo + j;
    __m256 y0 = _mm256_add_ps(_mm256_mul_ps(acc[i][0], mul0), bias0);
    __m256 y1 = _mm256_add_ps(_mm256_mul_ps(acc[i][1], mul1), bias1);
    if (o.residual) {
      y0 = _mm256_add_ps(y0, _mm256_maskload_ps(o.residual + at, m0));
      y1 = _mm256_add_ps(y1, _mm256_maskload_ps(o.residual + at + 8, m1));
    }
    // Operand order keeps NaN as NaN, like the scalar comparison chain.
    y0 = _mm256_min_ps(hi, _mm256_max_ps(lo, y0));
    y1 = _mm256_min_ps(hi, _mm256_max_ps(lo, y1));
    _mm256_maskstore_ps(o.out + at, m0, y0);
    _mm256_maskstore_ps(o.out + at + 8, m1, y1);
  }
}

}  // namespace

IRN_SGEMM_KERNEL(irn_sgemm_ukernel_6x16__avx2) {
  const size_t k = a.segs * a.seg_len;
  for (size_t j0 = 0; j0 < n; j0 += NR) {
    const float* panel = packed_b + (j0 / NR) * k * NR;
    const size_t cols = n - j0 < NR ? n - j0 : NR;
    size_t i = 0;
    for (; i + 6 <= m; i += 6) tile<6>(a, panel, out, i, j0, cols);
    for (; i < m; ++i) tile<1>(a, panel, out, i, j0, cols);
  }
}

}  // namespace irnet
