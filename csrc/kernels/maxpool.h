// Max pooling of one output pixel over channels-last input: out[c] = max over the window's
// taps of taps[t][c]. The caller passes a pointer per valid tap (padding taps are left out),
// so one kernel serves every window size, stride and border. NaN wins, as in PyTorch.
#pragma once
#include <cstddef>

namespace irnet {

using MaxPoolFn = void (*)(const float* const* taps, size_t n_taps, size_t channels, float* out);

void irn_maxpool_ukernel__scalar(const float* const* taps, size_t n_taps, size_t channels, float* out);
void irn_maxpool_ukernel__avx512(const float* const* taps, size_t n_taps, size_t channels, float* out);
void irn_maxpool_ukernel__avx2(const float* const* taps, size_t n_taps, size_t channels, float* out);
void irn_maxpool_ukernel__neon(const float* const* taps, size_t n_taps, size_t channels, float* out);

}  // namespace irnet
