// NEON (aarch64): 2 words (128 channels) per q register; an odd last word on its own.
#include <arm_neon.h>

#include "kernels/bitpool.h"

namespace irnet {

void irn_bitpool_b1_ukernel_c128__neon(const uint64_t* const* taps, size_t n_taps, size_t words, uint64_t* out) {
  size_t w = 0;
  for (; w + 2 <= words; w += 2) {
    uint64x2_t m = vld1q_u64(taps[0] + w);
    for (size_t t = 1; t < n_taps; ++t) m = vandq_u64(m, vld1q_u64(taps[t] + w));
    vst1q_u64(out + w, m);
  }
  if (w == words) return;
  uint64x1_t m = vld1_u64(taps[0] + w);
  for (size_t t = 1; t < n_taps; ++t) m = vand_u64(m, vld1_u64(taps[t] + w));
  vst1_u64(out + w, m);
}

}  // namespace irnet
