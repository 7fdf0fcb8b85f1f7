#include <cstring>

#include "kernels/bgemm.h"

namespace irnet {

std::vector<uint64_t> bgemm_pack_b(size_t n, size_t k_words, const BgemmKernel& kernel, const uint64_t* b) {
  const size_t nr = kernel.nr, panels = (n + nr - 1) / nr;
  if (kernel.lane_bits == 4) {
    // Word k of a panel: nr low-nibble words, then nr high-nibble words.
    std::vector<uint64_t> packed(panels * k_words * 2 * nr, 0);
    for (size_t j = 0; j < n; ++j)
      for (size_t k = 0; k < k_words; ++k) {
        const size_t at = ((j / nr) * k_words + k) * 2 * nr + j % nr;
        packed[at] = b[j * k_words + k] & kBgemmLowNibbles;
        packed[at + nr] = (b[j * k_words + k] >> 4) & kBgemmLowNibbles;
      }
    return packed;
  }
  std::vector<uint64_t> packed(panels * k_words * nr, 0);
  if (kernel.lane_bits == 64) {
    for (size_t j = 0; j < n; ++j)
      for (size_t k = 0; k < k_words; ++k) packed[((j / nr) * k_words + k) * nr + j % nr] = b[j * k_words + k];
    return packed;
  }
  // Word k of a panel: nr low halves, then nr high halves.
  std::vector<uint32_t> halves(packed.size() * 2, 0);
  for (size_t j = 0; j < n; ++j)
    for (size_t k = 0; k < k_words; ++k) {
      const size_t at = ((j / nr) * k_words + k) * 2 * nr + j % nr;
      halves[at] = uint32_t(b[j * k_words + k]);
      halves[at + nr] = uint32_t(b[j * k_words + k] >> 32);
    }
  std::memcpy(packed.data(), halves.data(), sizeof(uint64_t) * packed.size());
  return packed;
}

}  // namespace irnet
