// Max pooling of one output pixel over channels-last input: out[c] = max over the window's
// taps of taps[t][c]. The caller passes a pointer per valid tap (padding taps are left out),
// so one kernel serves every window size, stride and border. NaN wins, as in PyTorch; of two
// equal taps (-0.0 and +0.0) the first stays, on every ISA.
//
// Contract (every kernel): n_taps >= 1 (no window is all padding); each taps[t] points at
// `channels` readable floats; out has room for `channels` floats and overlaps no tap; no
// alignment is required.
#pragma once
#include <cstddef>

namespace irnet {

using MaxPoolFn = void (*)(const float* const* taps, size_t n_taps, size_t channels, float* out);

#define IRN_MAXPOOL_UKERNEL(isa, name) \
  void name(const float* const* taps, size_t n_taps, size_t channels, float* out);
#include "kernels/maxpool.inc"
#undef IRN_MAXPOOL_UKERNEL

}  // namespace irnet
