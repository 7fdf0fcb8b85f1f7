#include "kernels/bgemm.h"

namespace irnet {

// Portable reference: every SIMD kernel must give exactly these integers.
void irn_bgemm_i32_ukernel_1x8__scalar(size_t m, size_t n, size_t k_words, const uint64_t* a,
                                       size_t lda, const uint64_t* packed_b, int32_t* count,
                                       size_t ldc) {
  constexpr size_t NR = 8;
  for (size_t j0 = 0; j0 < n; j0 += NR) {
    const uint64_t* panel = packed_b + (j0 / NR) * k_words * NR;
    const size_t cols = n - j0 < NR ? n - j0 : NR;
    for (size_t i = 0; i < m; ++i) {
      const uint64_t* ai = a + i * lda;
      int64_t acc[NR] = {0};
      for (size_t k = 0; k < k_words; ++k)
        for (size_t j = 0; j < NR; ++j) acc[j] += __builtin_popcountll(ai[k] ^ panel[k * NR + j]);
      for (size_t j = 0; j < cols; ++j) count[i * ldc + j0 + j] = int32_t(acc[j]);
    }
  }
}

}  // namespace irnet
