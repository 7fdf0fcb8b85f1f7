// AVX2 has no vector popcount: nibble-LUT popcount (vpshufb) into byte counters, which are
// widened with vpsadbw before they can overflow (31 words x at most 8 bits per byte < 256).
#include <immintrin.h>

#include "kernels/bgemm.h"

namespace irnet {

namespace {

constexpr size_t NR = 8;
constexpr size_t kFlush = 31;

inline __m256i popcount_bytes(__m256i x, __m256i lut, __m256i low) {
  const __m256i lo = _mm256_and_si256(x, low);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
  return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

template <size_t MR>
inline void tile(const BgemmLhs& a, const uint64_t* panel, const BgemmOutput& o, size_t i0, size_t j0,
                 size_t cols) {
  const size_t k_words = a.k_words;
  const uint64_t* row[MR];
  for (size_t i = 0; i < MR; ++i) row[i] = a.base + a.row_offsets[i0 + i];
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  __m256i total[MR][2];
  for (size_t i = 0; i < MR; ++i) total[i][0] = total[i][1] = _mm256_setzero_si256();
  for (size_t k0 = 0; k0 < k_words; k0 += kFlush) {
    const size_t k1 = k0 + kFlush < k_words ? k0 + kFlush : k_words;
    __m256i bytes[MR][2];
    for (size_t i = 0; i < MR; ++i) bytes[i][0] = bytes[i][1] = _mm256_setzero_si256();
    for (size_t k = k0; k < k1; ++k) {
      const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + k * NR));
      const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + k * NR + 4));
      for (size_t i = 0; i < MR; ++i) {
        const __m256i ai = _mm256_set1_epi64x(static_cast<long long>(row[i][a.k_offsets[k]]));
        bytes[i][0] = _mm256_add_epi8(bytes[i][0], popcount_bytes(_mm256_xor_si256(ai, b0), lut, low));
        bytes[i][1] = _mm256_add_epi8(bytes[i][1], popcount_bytes(_mm256_xor_si256(ai, b1), lut, low));
      }
    }
    for (size_t i = 0; i < MR; ++i)
      for (size_t v = 0; v < 2; ++v)
        total[i][v] = _mm256_add_epi64(total[i][v], _mm256_sad_epu8(bytes[i][v], _mm256_setzero_si256()));
  }
  for (size_t i = 0; i < MR; ++i) {
    alignas(32) int64_t out[8];  // counts of row i
    _mm256_store_si256(reinterpret_cast<__m256i*>(out), total[i][0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out + 4), total[i][1]);
    for (size_t j = 0; j < cols; ++j)
      o.out[(i0 + i) * o.ldo + o.col + j0 + j] = bgemm_output_value(o, i0 + i, j0 + j, int64_t(out[j]));
  }
}

}  // namespace

IRN_BGEMM_KERNEL(irn_bgemm_f32_ukernel_2x8__avx2) {
  bgemm_tiles<NR, 2>(m, n, a, packed_b, out, tile<2>, tile<1>);
}

}  // namespace irnet
