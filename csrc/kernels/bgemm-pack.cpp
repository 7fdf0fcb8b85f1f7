#include "kernels/bgemm.h"

namespace irnet {

std::vector<uint64_t> bgemm_pack_b(size_t n, size_t k_words, size_t nr, const uint64_t* b) {
  const size_t panels = (n + nr - 1) / nr;
  std::vector<uint64_t> packed(panels * k_words * nr, 0);
  for (size_t j = 0; j < n; ++j)
    for (size_t k = 0; k < k_words; ++k)
      packed[((j / nr) * k_words + k) * nr + j % nr] = b[j * k_words + k];
  return packed;
}

}  // namespace irnet
