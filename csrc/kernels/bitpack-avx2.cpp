// Ordered less-than compare + movemask: 8 sign bits per instruction pair.
#include <immintrin.h>

#include "kernels/bitpack.h"

namespace irnet {

namespace {

inline uint64_t sign_bits8(const float* p, __m256 zero) {
  return unsigned(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p), zero, _CMP_LT_OQ)));
}

}  // namespace

void irn_bitpack_b1_ukernel__avx2(const float* x, size_t rows, size_t channels, uint64_t* out) {
  const size_t words = words_for(channels);
  const __m256 zero = _mm256_setzero_ps();
  if (channels % 64 == 0) {  // whole words: the rows are one run of words, no tails
    for (size_t w = 0; w < rows * words; ++w) {
      uint64_t bits = 0;
      for (size_t q = 0; q < 8; ++q) bits |= sign_bits8(x + w * 64 + q * 8, zero) << (q * 8);
      out[w] = bits;
    }
    return;
  }
  size_t r = 0;
  if (channels == 8 || channels == 16 || channels == 32) {
    // Rows of 8, 16 or 32 channels (the CIFAR networks' layers): 64 floats are whole rows, so
    // their signs are taken as one word and split, not row by row through the tail loop.
    const size_t per = 64 / channels;
    const uint64_t mask = (uint64_t(1) << channels) - 1;
    for (; r + per <= rows; r += per) {
      uint64_t bits = 0;
      for (size_t q = 0; q < 8; ++q) bits |= sign_bits8(x + r * channels + q * 8, zero) << (q * 8);
      for (size_t i = 0; i < per; ++i) out[r + i] = (bits >> (i * channels)) & mask;
    }
  }
  for (; r < rows; ++r) {
    const float* row = x + r * channels;
    uint64_t* dst = out + r * words;
    for (size_t w = 0; w < words; ++w) {
      uint64_t bits = 0;
      size_t c = w * 64;
      const size_t end = c + 64 < channels ? c + 64 : channels;
      for (; c + 8 <= end; c += 8) {
        bits |= sign_bits8(row + c, zero) << (c - w * 64);
      }
      for (; c < end; ++c) bits |= uint64_t(row[c] < 0.0f) << (c - w * 64);
      dst[w] = bits;
    }
  }
}

}  // namespace irnet
