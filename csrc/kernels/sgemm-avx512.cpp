// AVX-512 FMA over 64-column panels: up to 12 x 64 outputs a call, computed in register tiles
// of up to 7 x 64 in 28 zmm accumulators; each k step loads the four 16-float vectors of the
// panel row and broadcasts one A value per row straight into the FMAs (7 broadcasts + 4 loads
// per 28 FMAs). Narrower column tails (a 16-channel CIFAR layer) use only the vectors they need
// and more rows instead (8 x 48, 12 x 32, 12 x 16), so no FMA works on zero columns. The
// epilogue applies the output transform while the tile is in registers.
#include <immintrin.h>

#include "kernels/sgemm.h"

namespace irnet {

namespace {

constexpr size_t NR = 64;

inline __mmask16 lanes(size_t cols, size_t v) {
  const size_t left = cols > 16 * v ? cols - 16 * v : 0;
  return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
}

// Rows [r0, r0 + MR) of the call's tile x its first t.nc (<= 16 * NV) columns.
template <size_t MR, size_t NV>
void tile(const SgemmTile& t, const SgemmOutput& o, size_t r0) {
  __m512 acc[MR][NV];
  for (size_t i = 0; i < MR; ++i)
    for (size_t v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (size_t s = 0; s < t.segs; ++s) {
    const float* x[MR];
    for (size_t i = 0; i < MR; ++i) x[i] = t.a[r0 + i] + t.a_offsets[s];
    const float* b = t.b + s * t.seg_len * NR;
    for (size_t k = 0; k < t.seg_len; ++k) {
      __m512 bv[NV];
      for (size_t v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(b + k * NR + 16 * v);
      for (size_t i = 0; i < MR; ++i) {
        const __m512 ai = _mm512_set1_ps(x[i][k]);
        for (size_t v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
      }
    }
  }
  const size_t j = o.col + t.j0;
  const __m512 lo = _mm512_set1_ps(o.lo), hi = _mm512_set1_ps(o.hi);
  for (size_t i = 0; i < MR; ++i)
    for (size_t v = 0; v < NV; ++v) {
      const __mmask16 mask = lanes(t.nc, v);
      const size_t at = (t.i0 + r0 + i) * o.ldo + j + 16 * v;
      __m512 y = _mm512_add_ps(_mm512_mul_ps(acc[i][v], _mm512_maskz_loadu_ps(mask, o.mul + j + 16 * v)),
                               _mm512_maskz_loadu_ps(mask, o.bias + j + 16 * v));
      if (o.residual) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, o.residual + at));
      // Operand order keeps NaN as NaN, like the scalar comparison chain.
      y = _mm512_min_ps(hi, _mm512_max_ps(lo, y));
      _mm512_mask_storeu_ps(o.out + at, mask, y);
    }
}

// A register tile of exactly r rows (1 <= r <= R) starting at row r0.
template <size_t R, size_t NV>
void rows(size_t r, const SgemmTile& t, const SgemmOutput& o, size_t r0) {
  if constexpr (R > 0) {
    if (r == R) return tile<R, NV>(t, o, r0);
    rows<R - 1, NV>(r, t, o, r0);
  }
}

// The call's t.mr rows in as few register tiles as hold MAX rows each (accumulators, the
// panel row and the row pointers in registers), balanced: 12 rows of 64 columns are 6 + 6.
template <size_t NV>
void tiles(const SgemmTile& t, const SgemmOutput& o) {
  constexpr size_t MAX = NV == 4 ? 7 : NV == 3 ? 8 : 12;
  const size_t n = (t.mr + MAX - 1) / MAX;
  for (size_t q = 0, r0 = 0; q < n; ++q) {
    const size_t r = t.mr / n + (q < t.mr % n ? 1 : 0);
    rows<MAX, NV>(r, t, o, r0);
    r0 += r;
  }
}

}  // namespace

void irn_sgemm_f32_ukernel_12x64__avx512(const SgemmTile& t, const SgemmOutput& out) {
  switch ((t.nc + 15) / 16) {
    case 1: return tiles<1>(t, out);
    case 2: return tiles<2>(t, out);
    case 3: return tiles<3>(t, out);
    default: return tiles<4>(t, out);
  }
}

}  // namespace irnet
