// AVX-512 VPOPCNTDQ, counting in 32-bit lanes: per half word of A, vpxord with a broadcast +
// vpopcntd + vpaddd on 16 output channels at once (B panels hold half words, see
// bgemm_pack_b). The XOR/popcount work per bit is the same as with 64-bit lanes, but the
// counts come out as the int32 the epilogue needs, 16 channels per register: no narrowing,
// and half the accumulators. A 4 x 32 tile keeps 8 accumulators in zmm registers. The
// epilogue applies the output transform in the same operation order as the scalar one.
#include <immintrin.h>

#include <cmath>

#include "kernels/bgemm.h"

namespace irnet {

namespace {

constexpr size_t NR = 32;

inline __m512i broadcast_half(const uint64_t* word, size_t half) {
  return _mm512_broadcastd_epi32(_mm_loadu_si32(reinterpret_cast<const char*>(word) + 4 * half));
}

// The output transform of an MR x (16 * NV) tile of counts, `cols` columns valid. dot is
// computed in float as k_bits - 2 * count with one FMA: every value is an integer below 2^24,
// so it is exact and equals the integer dot the scalar reference converts. Rows with a padding
// correction subtract it in integers first (k_bits - correction may exceed 2^24).
template <size_t MR, size_t NV, bool kResidual, bool kClamp>
inline void store_tile(const BgemmOutput& o, size_t i0, size_t j0, size_t cols, const __m512i (&acc)[MR][NV]) {
  const size_t j = o.col + j0, ldo = o.ldo;
  __mmask16 mask[NV];
  __m512 mul[NV], bias[NV];
  for (size_t v = 0; v < NV; ++v) {
    const size_t left = cols - v * 16;
    mask[v] = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
    mul[v] = _mm512_maskz_loadu_ps(mask[v], o.mul + j + v * 16);
    bias[v] = _mm512_maskz_loadu_ps(mask[v], o.bias + j + v * 16);
  }
  const __m512 k_bits = _mm512_set1_ps(float(o.k_bits)), two = _mm512_set1_ps(2.0f);
  const __m512 lo = _mm512_set1_ps(o.lo), hi = _mm512_set1_ps(o.hi);
  const int32_t* const* corrections = o.correction;
  for (size_t i = 0; i < MR; ++i) {
    const size_t row = i0 + i;
    const int32_t* correction = corrections ? corrections[row] : nullptr;
    float* out = o.out + row * ldo + j;
    const float* residual = kResidual ? o.residual + row * ldo + j : nullptr;
    for (size_t v = 0; v < NV; ++v) {
      __m512 dot;
      if (correction) {
        const __m512i c = _mm512_maskz_loadu_epi32(mask[v], correction + j + v * 16);
        dot = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_sub_epi32(_mm512_set1_epi32(o.k_bits), c),
                                                  _mm512_slli_epi32(acc[i][v], 1)));
      } else {
        dot = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(acc[i][v]), two, k_bits);
      }
      __m512 y = _mm512_fmadd_ps(dot, mul[v], bias[v]);
      if (kResidual) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask[v], residual + v * 16));
      // Operand order keeps NaN as NaN, like the scalar comparison chain.
      if (kClamp) y = _mm512_min_ps(hi, _mm512_max_ps(lo, y));
      _mm512_mask_storeu_ps(out + v * 16, mask[v], y);
    }
  }
}

// MR rows x NV vectors of 16 columns; the full tile is MR = 4, NV = 2.
template <size_t MR, size_t NV, bool kResidual, bool kClamp>
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
    for (size_t h = 0; h < 2; ++h) {
      const uint32_t* halves = reinterpret_cast<const uint32_t*>(panel + k * NR) + h * NR;
      __m512i b[NV];
      for (size_t v = 0; v < NV; ++v) b[v] = _mm512_loadu_si512(halves + v * 16);
      for (size_t i = 0; i < MR; ++i) {
        const __m512i ai = broadcast_half(row[i] + off, h);
        for (size_t v = 0; v < NV; ++v)
          acc[i][v] = _mm512_add_epi32(acc[i][v], _mm512_popcnt_epi32(_mm512_xor_si512(ai, b[v])));
      }
    }
  }
  store_tile<MR, NV, kResidual, kClamp>(o, i0, j0, cols, acc);
}

template <size_t MR, bool kResidual, bool kClamp>
inline void row_tile(const BgemmLhs& a, const uint64_t* panel, const BgemmOutput& o, size_t i0, size_t j0,
                     size_t cols) {
  if (cols > 16)
    tile<MR, 2, kResidual, kClamp>(a, panel, o, i0, j0, cols);
  else
    tile<MR, 1, kResidual, kClamp>(a, panel, o, i0, j0, cols);
}

template <bool kResidual, bool kClamp>
void run_tiles(size_t m, size_t n, const BgemmLhs& a, const uint64_t* packed_b, const BgemmOutput& out) {
  bgemm_tiles<NR, 4>(m, n, a, packed_b, out, row_tile<4, kResidual, kClamp>, row_tile<1, kResidual, kClamp>);
}

}  // namespace

IRN_BGEMM_KERNEL(irn_bgemm_f32_ukernel_4x32__avx512) {
  // An unbounded clamp changes nothing (NaN stays NaN either way): skip it.
  const bool clamp = !(out.lo == -INFINITY && out.hi == INFINITY);
  if (out.residual)
    clamp ? run_tiles<true, true>(m, n, a, packed_b, out) : run_tiles<true, false>(m, n, a, packed_b, out);
  else
    clamp ? run_tiles<false, true>(m, n, a, packed_b, out) : run_tiles<false, false>(m, n, a, packed_b, out);
}

}  // namespace irnet
