// Max pooling of sign bits (one output pixel, channels packed 64 per word as bitpack.h makes
// them): the max of a window is negative only if every tap is, so the output's "negative" bit
// is the AND of the taps' bits: out[w] = AND over t of taps[t][w].
//
// Contract (every kernel): n_taps >= 1 (no window is all padding, and an empty AND would set
// the zero tail bits); each taps[t] points at `words` readable words; out has room for `words`
// words and overlaps no tap; no alignment is required. Tail bits stay 0 when the taps' are.
#pragma once
#include <cstddef>
#include <cstdint>

namespace irnet {

using BitPoolFn = void (*)(const uint64_t* const* taps, size_t n_taps, size_t words, uint64_t* out);

#define IRN_BITPOOL_UKERNEL(isa, name) \
  void name(const uint64_t* const* taps, size_t n_taps, size_t words, uint64_t* out);
#include "kernels/bitpool.inc"
#undef IRN_BITPOOL_UKERNEL

}  // namespace irnet
