// One ordered less-than compare per 16 floats gives 16 sign bits directly in a mask register.
#include <immintrin.h>

#include "kernels/bitpack.h"

namespace irnet {

void irn_bitpack_ukernel__avx512(const float* x, size_t rows, size_t channels, uint64_t* out) {
  const size_t words = words_for(channels);
  const __m512 zero = _mm512_setzero_ps();
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
