#include <limits>

#include "kernels/maxpool.h"

namespace irnet {

void irn_maxpool_f32_ukernel_c1__scalar(const float* const* taps, size_t n_taps, size_t channels, float* out) {
  for (size_t c = 0; c < channels; ++c) {
    float m = -std::numeric_limits<float>::infinity();
    for (size_t t = 0; t < n_taps; ++t) {
      const float v = taps[t][c];
      m = v > m || v != v ? v : m;  // a NaN tap wins and stays
    }
    out[c] = m;
  }
}

}  // namespace irnet
