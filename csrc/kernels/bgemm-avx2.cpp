// AVX2 has no vector popcount: nibble-LUT popcount (vpshufb) into byte counters. Words are
// taken seven at a time through carry-save adders (Harley-Seal), so three lookups (of the
// ones, twos and fours) count seven XOR words instead of seven lookups; the rest of K goes
// one word per lookup. Byte counters are widened with vpsadbw every kFlush words, before
// they can overflow. A 4 x 8 tile keeps its 8 byte counters in ymm registers; with the
// lookup tables and the carry-save temporaries that fills the 16 registers. The epilogue
// applies the output transform on 8 channels at a time, in the same operation order as the
// scalar one.
#include <immintrin.h>

#include "kernels/bgemm.h"

namespace irnet {

namespace {

constexpr size_t MR = 4;
constexpr size_t NR = 8;
constexpr size_t NV = NR / 4;  // ymm vectors of 4 columns
constexpr size_t kGroup = 7;   // words per carry-save group
// At most 8 bits per byte per word: 28 words (4 groups) keep a byte counter <= 224 < 256.
constexpr size_t kFlush = 4 * kGroup;

// Columns 0..3 and 4..7 as 64-bit sums (all < 2^32) -> the 8 columns as int32 in order.
inline __m256i counts8(__m256i lo4, __m256i hi4) {
  const __m256i mixed = _mm256_or_si256(lo4, _mm256_slli_epi64(hi4, 32));  // c0 c4 c1 c5 ...
  return _mm256_permutevar8x32_epi32(mixed, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
}

// Lanes 0..left-1 set, for the masked loads and stores of a partial panel.
inline __m256i tail_mask(size_t left) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(left)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Output transform of rows i0.. i0+ROWS-1, 8 columns j.. (`left` of them exist), from their
// counts. The per-column operands (mul, bias, bounds) are loaded once for all the rows, and the
// fields of `o` are read into locals first: the stores through `out` could alias them (lo and
// hi are floats), so the compiler would otherwise reload them after every row.
template <size_t ROWS>
inline void store_transformed(const BgemmOutput& o, size_t i0, size_t j, size_t left, const __m256i* count) {
  j += o.col;
  const bool full = left >= 8;
  const __m256i mask = tail_mask(full ? 8 : left);
  const size_t ldo = o.ldo;
  const int32_t* const* correction = o.correction;
  const float* residual = o.residual ? o.residual + i0 * ldo + j : nullptr;
  float* out = o.out + i0 * ldo + j;
  const __m256 mul = full ? _mm256_loadu_ps(o.mul + j) : _mm256_maskload_ps(o.mul + j, mask);
  const __m256 bias = full ? _mm256_loadu_ps(o.bias + j) : _mm256_maskload_ps(o.bias + j, mask);
  const __m256 lo = _mm256_set1_ps(o.lo), hi = _mm256_set1_ps(o.hi);
  const __m256i k_bits = _mm256_set1_epi32(o.k_bits);
  for (size_t i = 0; i < ROWS; ++i, out += ldo) {
    __m256i dot = _mm256_sub_epi32(k_bits, _mm256_slli_epi32(count[i], 1));
    if (const int32_t* corr = correction ? correction[i0 + i] : nullptr) {
      const __m256i c = full ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(corr + j))
                             : _mm256_maskload_epi32(corr + j, mask);
      dot = _mm256_sub_epi32(dot, c);
    }
    __m256 y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), mul, bias);
    if (residual) {
      y = _mm256_add_ps(y, full ? _mm256_loadu_ps(residual) : _mm256_maskload_ps(residual, mask));
      residual += ldo;
    }
    // Operand order keeps NaN as NaN, like the scalar comparison chain.
    y = _mm256_min_ps(hi, _mm256_max_ps(lo, y));
    if (full) {
      _mm256_storeu_ps(out, y);
    } else {
      _mm256_maskstore_ps(out, mask, y);
    }
  }
}

// Carry-save adder: a + b + c = sum + 2 * carry, bit by bit.
inline void csa(__m256i& sum, __m256i& carry, __m256i a, __m256i b, __m256i c) {
  const __m256i u = _mm256_xor_si256(a, b);
  sum = _mm256_xor_si256(u, c);
  carry = _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(u, c));
}

// Byte counts of the nibble halves of x looked up in `lut` (a weighted popcount table).
inline __m256i lookup(__m256i x, __m256i lut, __m256i low) {
  const __m256i lo = _mm256_and_si256(x, low);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
  return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

template <size_t ROWS>
inline void tile(const BgemmLhs& a, const uint64_t* panel, const BgemmOutput& o, size_t i0, size_t j0,
                 size_t cols) {
  const size_t k_words = a.k_words;
  const uint32_t* koff = a.k_offsets;
  const uint64_t* row[ROWS];
  for (size_t i = 0; i < ROWS; ++i) row[i] = a.base + a.row_offsets[i0 + i];
  const __m256i lut1 = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i lut2 = _mm256_add_epi8(lut1, lut1);
  const __m256i lut4 = _mm256_add_epi8(lut2, lut2);
  const __m256i low = _mm256_set1_epi8(0x0f);
  __m256i total[ROWS][NV];
  for (size_t i = 0; i < ROWS; ++i)
    for (size_t v = 0; v < NV; ++v) total[i][v] = _mm256_setzero_si256();
  for (size_t k0 = 0; k0 < k_words; k0 += kFlush) {
    const size_t k1 = k0 + kFlush < k_words ? k0 + kFlush : k_words;
    __m256i bytes[ROWS][NV];
    for (size_t i = 0; i < ROWS; ++i)
      for (size_t v = 0; v < NV; ++v) bytes[i][v] = _mm256_setzero_si256();
    size_t k = k0;
    for (; k + kGroup <= k1; k += kGroup) {
      for (size_t i = 0; i < ROWS; ++i)
        for (size_t v = 0; v < NV; ++v) {
          __m256i x[kGroup];
          for (size_t t = 0; t < kGroup; ++t)
            x[t] = _mm256_xor_si256(
                _mm256_set1_epi64x(static_cast<long long>(row[i][koff[k + t]])),
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + (k + t) * NR + 4 * v)));
          __m256i ones, c1, c2, c3, twos, fours;
          csa(ones, c1, x[0], x[1], x[2]);
          csa(ones, c2, ones, x[3], x[4]);
          csa(ones, c3, ones, x[5], x[6]);
          csa(twos, fours, c1, c2, c3);
          const __m256i sum = _mm256_add_epi8(lookup(ones, lut1, low), lookup(twos, lut2, low));
          bytes[i][v] = _mm256_add_epi8(bytes[i][v], _mm256_add_epi8(sum, lookup(fours, lut4, low)));
        }
    }
    for (; k < k1; ++k) {
      const size_t off = koff[k];
      __m256i b[NV];
      for (size_t v = 0; v < NV; ++v)
        b[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + k * NR + 4 * v));
      for (size_t i = 0; i < ROWS; ++i) {
        const __m256i ai = _mm256_set1_epi64x(static_cast<long long>(row[i][off]));
        for (size_t v = 0; v < NV; ++v)
          bytes[i][v] = _mm256_add_epi8(bytes[i][v], lookup(_mm256_xor_si256(ai, b[v]), lut1, low));
      }
    }
    for (size_t i = 0; i < ROWS; ++i)
      for (size_t v = 0; v < NV; ++v)
        total[i][v] = _mm256_add_epi64(total[i][v], _mm256_sad_epu8(bytes[i][v], _mm256_setzero_si256()));
  }
  __m256i counts[ROWS];
  for (size_t i = 0; i < ROWS; ++i) counts[i] = counts8(total[i][0], total[i][1]);
  store_transformed<ROWS>(o, i0, j0, cols, counts);
}

}  // namespace

IRN_BGEMM_KERNEL(irn_bgemm_f32_ukernel_4x8__avx2) {
  bgemm_tiles<NR, MR>(m, n, a, packed_b, out, tile<MR>, tile<1>);
}

}  // namespace irnet
