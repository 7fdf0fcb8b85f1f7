#include "kernels/bgemm.h"

namespace irnet {

// Portable reference: every SIMD kernel must give exactly these integers.
void irn_bgemm_i32_ukernel__scalar(size_t m, size_t n, size_t k_words, const uint64_t* a,
                                   const uint64_t* b, int32_t* count, size_t ldc) {
  for (size_t i = 0; i < m; ++i) {
    const uint64_t* ai = a + i * k_words;
    for (size_t j = 0; j < n; ++j) {
      const uint64_t* bj = b + j * k_words;
      int64_t c = 0;
      for (size_t k = 0; k < k_words; ++k) c += __builtin_popcountll(ai[k] ^ bj[k]);
      count[i * ldc + j] = static_cast<int32_t>(c);
    }
  }
}

}  // namespace irnet
