#include "kernels/bitpool.h"

namespace irnet {

// Portable reference: every SIMD kernel must give exactly these words.
void irn_bitpool_b1_ukernel_c64__scalar(const uint64_t* const* taps, size_t n_taps, size_t words, uint64_t* out) {
  for (size_t w = 0; w < words; ++w) {
    uint64_t m = taps[0][w];
    for (size_t t = 1; t < n_taps; ++t) m &= taps[t][w];
    out[w] = m;
  }
}

}  // namespace irnet
