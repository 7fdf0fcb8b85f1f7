// AVX-512 FMA over 64-column panels: a 7 x 64 tile of C in 28 zmm accumulators; each k step
// loads the four 16-float vectors of the panel row and broadcasts one A value per row straight
// into the FMAs (7 broadcasts + 4 loads per 28 FMAs). Narrower column tails (a 16-channel
// CIFAR stem) use only the vectors they need and more rows instead, so no FMA works on zero
// columns. The epilogue applies the output transform while the tile is in registers.
#include <immintrin.h>

#include "kernels/sgemm.h"

namespace irnet {

namespace {

constexpr size_t NR = 64;

inline __mmask16 lanes(size_t cols, size_t v) {
  const size_t left = cols > 16 * v ? cols - 16 * v : 0;
  return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
}

// Rows [i0, i0 + MR) x the first `cols` (<= 16 * NV) columns of the panel.
template <size_t MR, size_t NV>
inline void tile(const SgemmLhs& a, const float* panel, const SgemmOutput& o, size_t i0, size_t j0,
                 size_t cols) {
  __m512 acc[MR][NV];
  for (size_t i = 0; i < MR; ++i)
    for (size_t v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  const float* rows = a.base + i0 * a.lda;
  const size_t lda = a.lda;
  for (size_t s = 0; s < a.segs; ++s) {
    const float* x = rows + a.seg_offsets[s];
    const float* b = panel + s * a.seg_len * NR;
    for (size_t t = 0; t < a.seg_len; ++t) {
      __m512 bv[NV];
      for (size_t v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(b + t * NR + 16 * v);
      for (size_t i = 0; i < MR; ++i) {
        const __m512 ai = _mm512_set1_ps(x[i * lda + t]);
        for (size_t v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
      }
    }
  }
  const size_t j = o.col + j0;
  const __m512 lo = _mm512_set1_ps(o.lo), hi = _mm512_set1_ps(o.hi);
  for (size_t i = 0; i < MR; ++i)
    for (size_t v = 0; v < NV; ++v) {
      const __mmask16 mask = lanes(cols, v);
      const size_t at = (i0 + i) * o.ldo + j + 16 * v;
      __m512 y = _mm512_add_ps(_mm512_mul_ps(acc[i][v], _mm512_maskz_loadu_ps(mask, o.mul + j + 16 * v)),
                               _mm512_maskz_loadu_ps(mask, o.bias + j + 16 * v));
      if (o.residual) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, o.residual + at));
      // Operand order keeps NaN as NaN, like the scalar comparison chain.
      y = _mm512_min_ps(hi, _mm512_max_ps(lo, y));
      _mm512_mask_storeu_ps(o.out + at, mask, y);
    }
}

// The last r < MR rows as one tile of exactly r rows: row by row, a tile would have too few
// accumulators to hide the FMA latency.
template <size_t R, size_t NV>
inline void tail(size_t r, const SgemmLhs& a, const float* panel, const SgemmOutput& o, size_t i0,
                 size_t j0, size_t cols) {
  if constexpr (R > 0) {
    if (r == R) return tile<R, NV>(a, panel, o, i0, j0, cols);
    tail<R - 1, NV>(r, a, panel, o, i0, j0, cols);
  }
}

// All m rows of one panel, NV vectors wide: as many rows per tile as keep the accumulators,
// the panel row and the row pointers in registers.
template <size_t NV>
void panel_rows(size_t m, const SgemmLhs& a, const float* panel, const SgemmOutput& o, size_t j0,
                size_t cols) {
  constexpr size_t MR = NV == 4 ? 7 : NV == 3 ? 8 : 12;
  size_t i = 0;
  for (; i + MR <= m; i += MR) tile<MR, NV>(a, panel, o, i, j0, cols);
  tail<MR - 1, NV>(m - i, a, panel, o, i, j0, cols);
}

}  // namespace

IRN_SGEMM_KERNEL(irn_sgemm_ukernel_7x64__avx512) {
  const size_t k = a.segs * a.seg_len;
  for (size_t j0 = 0; j0 < n; j0 += NR) {
    const float* panel = packed_b + (j0 / NR) * k * NR;
    const size_t cols = n - j0 < NR ? n - j0 : NR;
    switch ((cols + 15) / 16) {
      case 1: panel_rows<1>(m, a, panel, out, j0, cols); break;
      case 2: panel_rows<2>(m, a, panel, out, j0, cols); break;
      case 3: panel_rows<3>(m, a, panel, out, j0, cols); break;
      default: panel_rows<4>(m, a, panel, out, j0, cols); break;
    }
  }
}

}  // namespace irnet
