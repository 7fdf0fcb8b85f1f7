#include "kernels/bitpack.h"

#include <cstring>

namespace irnet {

void irn_bitpack_b1_ukernel__scalar(const float* x, size_t rows, size_t channels, uint64_t* out) {
  const size_t words = words_for(channels);
  for (size_t r = 0; r < rows; ++r) {
    const float* row = x + r * channels;
    uint64_t* dst = out + r * words;
    for (size_t w = 0; w < words; ++w) {
      const size_t begin = w * 64;
      const size_t end = begin + 64 < channels ? begin + 64 : channels;
      uint64_t bits = 0;
      for (size_t c = begin; c < end; ++c) bits |= uint64_t(row[c] < 0.0f) << (c - begin);
      dst[w] = bits;
    }
  }
}

}  // namespace irnet
