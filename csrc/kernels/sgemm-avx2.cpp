// AVX2 + FMA: a tile of up to 6 x 16 outputs in 12 ymm accumulators over one packed B panel;
// each k step loads the panel row (2 vectors) and broadcasts one A value per row into 2 FMAs.
// The epilogue applies the output transform while the tile is in registers; column tails only
// mask loads and stores.
#include <immintrin.h>

#include "kernels/sgemm.h"

namespace irnet {

namespace {

constexpr size_t NR = 16;

inline __m256i tail_mask(size_t left) {
  const int n = left >= 8 ? 8 : int(left);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The output transform of a tile held in registers. Masked is only for a column tail: AMD
// cores run a vmaskmovps store as a dozen micro-ops, a tenth of a whole 6x16 tile's time.
template <size_t MR, bool kMasked>
inline void store(const __m256 (&acc)[MR][2], const SgemmTile& t, const SgemmOutput& o) {
  const size_t j = o.col + t.j0;
  const __m256i m0 = tail_mask(t.nc), m1 = tail_mask(t.nc > 8 ? t.nc - 8 : 0);
  auto load = [&](const float* p, __m256i m) { return kMasked ? _mm256_maskload_ps(p, m) : _mm256_loadu_ps(p); };
  const __m256 mul0 = load(o.mul + j, m0), mul1 = load(o.mul + j + 8, m1);
  const __m256 bias0 = load(o.bias + j, m0), bias1 = load(o.bias + j + 8, m1);
  const __m256 lo = _mm256_set1_ps(o.lo), hi = _mm256_set1_ps(o.hi);
  for (size_t i = 0; i < MR; ++i) {
    const size_t at = (t.i0 + i) * o.ldo + j;
    __m256 y0 = _mm256_add_ps(_mm256_mul_ps(acc[i][0], mul0), bias0);
    __m256 y1 = _mm256_add_ps(_mm256_mul_ps(acc[i][1], mul1), bias1);
    if (o.residual) {
      y0 = _mm256_add_ps(y0, load(o.residual + at, m0));
      y1 = _mm256_add_ps(y1, load(o.residual + at + 8, m1));
    }
    // Operand order keeps NaN as NaN, like the scalar comparison chain.
    y0 = _mm256_min_ps(hi, _mm256_max_ps(lo, y0));
    y1 = _mm256_min_ps(hi, _mm256_max_ps(lo, y1));
    if (kMasked) {
      _mm256_maskstore_ps(o.out + at, m0, y0);
      _mm256_maskstore_ps(o.out + at + 8, m1, y1);
    } else {
      _mm256_storeu_ps(o.out + at, y0);
      _mm256_storeu_ps(o.out + at + 8, y1);
    }
  }
}

template <size_t MR>
void tile(const SgemmTile& t, const SgemmOutput& o) {
  __m256 acc[MR][2];
  for (size_t i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (size_t s = 0; s < t.segs; ++s) {
    const float* x[MR];
    for (size_t i = 0; i < MR; ++i) x[i] = t.a[i] + t.a_offsets[s];
    const float* b = t.b + s * t.seg_len * NR;
#pragma GCC unroll 4
    for (size_t k = 0; k < t.seg_len; ++k) {
      const __m256 b0 = _mm256_loadu_ps(b + k * NR);
      const __m256 b1 = _mm256_loadu_ps(b + k * NR + 8);
      for (size_t i = 0; i < MR; ++i) {
        // set1, not _mm256_broadcast_ss: around the latter GCC kept the accumulators on the
        // stack (a store after every FMA).
        const __m256 ai = _mm256_set1_ps(x[i][k]);
        acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
      }
    }
  }
  if (t.nc == NR)
    store<MR, false>(acc, t, o);
  else
    store<MR, true>(acc, t, o);
}

}  // namespace

void irn_sgemm_f32_ukernel_6x16__avx2(const SgemmTile& t, const SgemmOutput& out) {
  switch (t.mr) {
    case 1: return tile<1>(t, out);
    case 2: return tile<2>(t, out);
    case 3: return tile<3>(t, out);
    case 4: return tile<4>(t, out);
    case 5: return tile<5>(t, out);
    default: return tile<6>(t, out);
  }
}

}  // namespace irnet
