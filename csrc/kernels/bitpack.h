// Sign + bit-pack of float activations along channels, 64 channels per word.
// Bit 1 means -1 (x < 0), bit 0 means +1 (x >= 0, so 0.0 and -0.0 are +1; NaN is +1).
// Unused tail bits of the last word are 0.
//
// Contract (every kernel): x holds rows * channels floats (row stride `channels`), out room for
// rows * words_for(channels) words; the two do not overlap; no alignment is required; rows and
// channels may be 0 (nothing is written).
#pragma once
#include <cstddef>
#include <cstdint>

namespace irnet {

// rows x channels floats (row stride `channels`) -> rows x words_for(channels) words.
using BitpackFn = void (*)(const float* x, size_t rows, size_t channels, uint64_t* out);

inline size_t words_for(size_t channels) { return (channels + 63) / 64; }

#define IRN_BITPACK_UKERNEL(isa, name) void name(const float* x, size_t rows, size_t channels, uint64_t* out);
#include "kernels/bitpack.inc"
#undef IRN_BITPACK_UKERNEL

}  // namespace irnet
