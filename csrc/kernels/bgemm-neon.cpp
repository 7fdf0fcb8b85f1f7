// NEON (aarch64): veorq + vcntq_u8 into byte counters, widened with pairwise adds
// (vpaddlq) before they can overflow (31 words x at most 8 bits per byte < 256).
#include <arm_neon.h>

#include "kernels/bgemm.h"

namespace irnet {

namespace {

constexpr size_t NR = 8;
constexpr size_t kFlush = 31;

template <size_t MR>
inline void tile(const BgemmLhs& a, const uint64_t* panel, const BgemmOutput& o, size_t i0, size_t j0,
                 size_t cols) {
  const size_t k_words = a.k_words;
  const uint64_t* row[MR];
  for (size_t i = 0; i < MR; ++i) row[i] = a.base + a.row_offsets[i0 + i];
  uint64x2_t total[MR][4];
  for (size_t i = 0; i < MR; ++i)
    for (size_t v = 0; v < 4; ++v) total[i][v] = vdupq_n_u64(0);
  for (size_t k0 = 0; k0 < k_words; k0 += kFlush) {
    const size_t k1 = k0 + kFlush < k_words ? k0 + kFlush : k_words;
    uint8x16_t bytes[MR][4];
    for (size_t i = 0; i < MR; ++i)
      for (size_t v = 0; v < 4; ++v) bytes[i][v] = vdupq_n_u8(0);
    for (size_t k = k0; k < k1; ++k) {
      uint64x2_t b[4];
      for (size_t v = 0; v < 4; ++v) b[v] = vld1q_u64(panel + k * NR + 2 * v);
      for (size_t i = 0; i < MR; ++i) {
        const uint64x2_t ai = vdupq_n_u64(row[i][a.k_offsets[k]]);
        for (size_t v = 0; v < 4; ++v)
          bytes[i][v] = vaddq_u8(bytes[i][v], vcntq_u8(vreinterpretq_u8_u64(veorq_u64(ai, b[v]))));
      }
    }
    for (size_t i = 0; i < MR; ++i)
      for (size_t v = 0; v < 4; ++v)
        total[i][v] = vaddq_u64(total[i][v], vpaddlq_u32(vpaddlq_u16(vpaddlq_u8(bytes[i][v]))));
  }
  for (size_t i = 0; i < MR; ++i) {
    uint64_t out[8];
    for (size_t v = 0; v < 4; ++v) vst1q_u64(out + 2 * v, total[i][v]);
    for (size_t j = 0; j < cols; ++j)
      o.out[(i0 + i) * o.ldo + o.col + j0 + j] = bgemm_output_value(o, i0 + i, j0 + j, int64_t(out[j]));
  }
}

}  // namespace

IRN_BGEMM_KERNEL(irn_bgemm_f32_ukernel_2x8__neon) {
  bgemm_tiles<NR, 2>(m, n, a, packed_b, out, tile<2>, tile<1>);
}

}  // namespace irnet
