#include "kernels/bgemm.h"

namespace irnet {

// Portable reference: every SIMD kernel must give exactly these integers.
IRN_BGEMM_KERNEL(irn_bgemm_f32_ukernel_1x8__scalar) {
  constexpr size_t NR = 8;
  for (size_t j0 = 0; j0 < n; j0 += NR) {
    const uint64_t* panel = packed_b + (j0 / NR) * a.k_words * NR;
    const size_t cols = n - j0 < NR ? n - j0 : NR;
    for (size_t i = 0; i < m; ++i) {
      int64_t acc[NR] = {0};
      for (size_t k = 0; k < a.k_words; ++k) {
        const uint64_t aik = a.word(i, k);
        for (size_t j = 0; j < NR; ++j) acc[j] += __builtin_popcountll(aik ^ panel[k * NR + j]);
      }
      for (size_t j = 0; j < cols; ++j)
        out.out[i * out.ldo + out.col + j0 + j] = bgemm_output_value(out, i, j0 + j, acc[j]);
    }
  }
}

}  // namespace irnet
