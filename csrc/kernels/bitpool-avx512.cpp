// 8 words (512 channels) per zmm register; the last ones through a masked load and store.
#include <immintrin.h>

#include "kernels/bitpool.h"

namespace irnet {

void irn_bitpool_b1_ukernel_c512__avx512(const uint64_t* const* taps, size_t n_taps, size_t words, uint64_t* out) {
  for (size_t w = 0; w < words; w += 8) {
    const __mmask8 mask = words - w >= 8 ? __mmask8(0xff) : __mmask8((1u << (words - w)) - 1);
    __m512i m = _mm512_maskz_loadu_epi64(mask, taps[0] + w);
    for (size_t t = 1; t < n_taps; ++t) m = _mm512_and_si512(m, _mm512_maskz_loadu_epi64(mask, taps[t] + w));
    _mm512_mask_storeu_epi64(out + w, mask, m);
  }
}

}  // namespace irnet
