// Portable version: up to 4 rows x 8 columns a call; the fixed-width inner loop lets the
// compiler vectorize it for whatever the target has.
#include "kernels/sgemm.h"

namespace irnet {

void irn_sgemm_f32_ukernel_4x8__scalar(const SgemmTile& t, const SgemmOutput& out) {
  constexpr size_t MR = 4, NR = 8;
  float acc[MR][NR] = {};
  for (size_t s = 0; s < t.segs; ++s) {
    const float* b = t.b + s * t.seg_len * NR;
    for (size_t i = 0; i < t.mr; ++i) {
      const float* x = t.a[i] + t.a_offsets[s];
      for (size_t k = 0; k < t.seg_len; ++k)
        for (size_t j = 0; j < NR; ++j) acc[i][j] += x[k] * b[k * NR + j];
    }
  }
  for (size_t i = 0; i < t.mr; ++i)
    for (size_t j = 0; j < t.nc; ++j)
      out.out[(t.i0 + i) * out.ldo + out.col + t.j0 + j] = sgemm_output_value(out, t.i0 + i, t.j0 + j, acc[i][j]);
}

}  // namespace irnet
