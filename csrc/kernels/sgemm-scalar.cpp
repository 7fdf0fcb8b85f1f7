#include "kernels/sgemm.h"

namespace irnet {

SgemmPackedB sgemm_pack_b(size_t k, size_t n, size_t nr, const float* b) {
  const size_t panels = (n + nr - 1) / nr;
  SgemmPackedB packed(panels * k * nr, 0.0f);
  for (size_t p = 0; p < k; ++p)
    for (size_t j = 0; j < n; ++j) packed[((j / nr) * k + p) * nr + j % nr] = b[p * n + j];
  return packed;
}

// Portable version: one row x 8 columns at a time; the fixed-width inner loop lets the
// compiler vectorize it for whatever the target has.
IRN_SGEMM_KERNEL(irn_sgemm_ukernel_1x8__scalar) {
  constexpr size_t NR = 8;
  const size_t k = a.segs * a.seg_len;
  for (size_t j0 = 0; j0 < n; j0 += NR) {
    const float* panel = packed_b + (j0 / NR) * k * NR;
    const size_t cols = n - j0 < NR ? n - j0 : NR;
    for (size_t i = 0; i < m; ++i) {
      float acc[NR] = {0};
      for (size_t s = 0; s < a.segs; ++s) {
        const float* x = a.base + i * a.lda + a.seg_offsets[s];
        const float* b = panel + s * a.seg_len * NR;
        for (size_t t = 0; t < a.seg_len; ++t)
          for (size_t j = 0; j < NR; ++j) acc[j] += x[t] * b[t * NR + j];
      }
      for (size_t j = 0; j < cols; ++j) out.out[i * out.ldo + out.col + j0 + j] = sgemm_output_value(out, i, j0 + j, acc[j]);
    }
  }
}

}  // namespace irnet
