// AVX-512 VPOPCNTDQ: per word of A, vpxorq with a broadcast + vpopcntq + vpaddq on 8 output
// channels at once; a 4 x 32 tile keeps 16 accumulators in zmm registers. The epilogue applies
// the output transform on 8 channels at a time, in the same operation order as the scalar one.
#include <immintrin.h>

#include "kernels/bgemm.h"

namespace irnet {

namespace {

constexpr size_t NR = 32;

inline void store_transformed(const BgemmOutput& o, size_t i, size_t j, size_t left, __m512i count) {
  j += o.col;
  const __mmask8 mask = left >= 8 ? __mmask8(0xff) : __mmask8((1u << left) - 1);
  __m256i dot = _mm256_sub_epi32(_mm256_set1_epi32(o.k_bits),
                                 _mm256_slli_epi32(_mm512_cvtepi64_epi32(count), 1));
  if (o.correction && o.correction[i])
    dot = _mm256_sub_epi32(dot, _mm256_maskz_loadu_epi32(mask, o.correction[i] + j));
  __m256 y = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dot), _mm256_maskz_loadu_ps(mask, o.mul + j)),
                           _mm256_maskz_loadu_ps(mask, o.bias + j));
  if (o.residual) y = _mm256_add_ps(y, _mm256_maskz_loadu_ps(mask, o.residual + i * o.ldo + j));
  // Operand order keeps NaN as NaN, like the scalar comparison chain.
  y = _mm256_min_ps(_mm256_set1_ps(o.hi), _mm256_max_ps(_mm256_set1_ps(o.lo), y));
  _mm256_mask_storeu_ps(o.out + i * o.ldo + j, mask, y);
}

// 16 channels at once: two 8-lane count vectors narrowed into one zmm of int32.
inline void store_transformed16(const BgemmOutput& o, size_t i, size_t j, size_t left, __m512i lo8,
                                __m512i hi8) {
  j += o.col;
  const __mmask16 mask = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
  const __m512i count = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(lo8)),
                                           _mm512_cvtepi64_epi32(hi8), 1);
  __m512i dot = _mm512_sub_epi32(_mm512_set1_epi32(o.k_bits), _mm512_slli_epi32(count, 1));
  if (o.correction && o.correction[i])
    dot = _mm512_sub_epi32(dot, _mm512_maskz_loadu_epi32(mask, o.correction[i] + j));
  __m512 y = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_maskz_loadu_ps(mask, o.mul + j)),
                           _mm512_maskz_loadu_ps(mask, o.bias + j));
  if (o.residual) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, o.residual + i * o.ldo + j));
  y = _mm512_min_ps(_mm512_set1_ps(o.hi), _mm512_max_ps(_mm512_set1_ps(o.lo), y));
  _mm512_mask_storeu_ps(o.out + i * o.ldo + j, mask, y);
}

// MR rows x NV vectors of 8 columns; the full tile is MR = 4, NV = 4.
template <size_t MR, size_t NV>
inline void tile(const BgemmLhs& a, const uint64_t* panel, const BgemmOutput& o, size_t i0, size_t j0,
                 size_t cols) {
  __m512i acc[MR][NV];
  const uint64_t* row[MR];
  for (size_t i = 0; i < MR; ++i) {
    row[i] = a.base + a.row_offsets[i0 + i];
    for (size_t v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_si512();
  }
  for (size_t k = 0; k < a.k_words; ++k) {
    const size_t off = a.k_offsets[k];
    __m512i b[NV];
    for (size_t v = 0; v < NV; ++v) b[v] = _mm512_loadu_si512(panel + k * NR + v * 8);
    for (size_t i = 0; i < MR; ++i) {
      const __m512i ai = _mm512_set1_epi64(static_cast<long long>(row[i][off]));
      for (size_t v = 0; v < NV; ++v)
        acc[i][v] = _mm512_add_epi64(acc[i][v], _mm512_popcnt_epi64(_mm512_xor_si512(ai, b[v])));
    }
  }
  for (size_t i = 0; i < MR; ++i) {
    size_t v = 0;
    for (; v + 2 <= NV; v += 2)
      store_transformed16(o, i0 + i, j0 + v * 8, cols - v * 8, acc[i][v], acc[i][v + 1]);
    if (v < NV) store_transformed(o, i0 + i, j0 + v * 8, cols - v * 8, acc[i][v]);
  }
}

template <size_t MR>
inline void row_tile(const BgemmLhs& a, const uint64_t* panel, const BgemmOutput& o, size_t i0, size_t j0,
                     size_t cols) {
  switch ((cols + 7) / 8) {
    case 1: tile<MR, 1>(a, panel, o, i0, j0, cols); break;
    case 2: tile<MR, 2>(a, panel, o, i0, j0, cols); break;
    case 3: tile<MR, 3>(a, panel, o, i0, j0, cols); break;
    default: tile<MR, 4>(a, panel, o, i0, j0, cols); break;
  }
}

}  // namespace

IRN_BGEMM_KERNEL(irn_bgemm_f32_ukernel_4x32__avx512) {
  bgemm_tiles<NR, 4>(m, n, a, packed_b, out, row_tile<4>, row_tile<1>);
}

}  // namespace irnet
