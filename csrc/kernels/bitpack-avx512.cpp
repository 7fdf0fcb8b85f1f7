// One ordered less-than compare per 16 floats gives 16 sign bits directly in a mask register.
#include <immintrin.h>

#include "kernels/bitpack.h"

namespace irnet {

namespace {

inline uint64_t sign_bits64(const float* p, __m512 zero) {
  const uint64_t b0 = _mm512_cmp_ps_mask(_mm512_loadu_ps(p), zero, _CMP_LT_OQ);
  const uint64_t b1 = _mm512_cmp_ps_mask(_mm512_loadu_ps(p + 16), zero, _CMP_LT_OQ);
  const uint64_t b2 = _mm512_cmp_ps_mask(_mm512_loadu_ps(p + 32), zero, _CMP_LT_OQ);
  const uint64_t b3 = _mm512_cmp_ps_mask(_mm512_loadu_ps(p + 48), zero, _CMP_LT_OQ);
  return b0 | b1 << 16 | b2 << 32 | b3 << 48;
}

}  // namespace

void irn_bitpack_b1_ukernel__avx512(const float* x, size_t rows, size_t channels, uint64_t* out) {
  const size_t words = words_for(channels);
  const __m512 zero = _mm512_setzero_ps();
  if (channels % 64 == 0) {  // whole words: the rows are one run of words, no tails
    for (size_t w = 0; w < rows * words; ++w) out[w] = sign_bits64(x + w * 64, zero);
    return;
  }
  for (size_t r = 0; r < rows; ++r) {
    const float* row = x + r * channels;
    uint64_t* dst = out + r * words;
    for (size_t w = 0; w < words; ++w) {
      uint64_t bits = 0;
      for (size_t q = 0; q < 4; ++q) {
        const size_t c = w * 64 + q * 16;
        if (c >= channels) break;
        const size_t left = channels - c;
        const __mmask16 valid = left >= 16 ? 0xffff : __mmask16((1u << left) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(valid, row + c);
        bits |= uint64_t(_mm512_mask_cmp_ps_mask(valid, v, zero, _CMP_LT_OQ)) << (q * 16);
      }
      dst[w] = bits;
    }
  }
}

}  // namespace irnet
