// NEON (aarch64): an ordered less-than compare per 4 floats, narrowed to one byte per channel,
// then weighted by its bit and summed pairwise (vpaddq) three times: 64 channels -> 8 bytes,
// one word, with no movemask instruction to lean on.
#include <arm_neon.h>

#include <cstring>

#include "kernels/bitpack.h"

namespace irnet {

namespace {

// 0xFF per negative channel of p[0..15], 0x00 otherwise (NaN, 0.0 and -0.0 are not negative).
inline uint8x16_t negative16(const float* p, float32x4_t zero) {
  const uint16x8_t lo = vcombine_u16(vmovn_u32(vcltq_f32(vld1q_f32(p), zero)),
                                     vmovn_u32(vcltq_f32(vld1q_f32(p + 4), zero)));
  const uint16x8_t hi = vcombine_u16(vmovn_u32(vcltq_f32(vld1q_f32(p + 8), zero)),
                                     vmovn_u32(vcltq_f32(vld1q_f32(p + 12), zero)));
  return vcombine_u8(vmovn_u16(lo), vmovn_u16(hi));
}

inline uint64_t sign_word(const float* p, float32x4_t zero, uint8x16_t weights) {
  const uint8x16_t m0 = vandq_u8(negative16(p, zero), weights);
  const uint8x16_t m1 = vandq_u8(negative16(p + 16, zero), weights);
  const uint8x16_t m2 = vandq_u8(negative16(p + 32, zero), weights);
  const uint8x16_t m3 = vandq_u8(negative16(p + 48, zero), weights);
  const uint8x16_t pairs = vpaddq_u8(vpaddq_u8(m0, m1), vpaddq_u8(m2, m3));
  return vgetq_lane_u64(vreinterpretq_u64_u8(vpaddq_u8(pairs, pairs)), 0);
}

}  // namespace

void irn_bitpack_b1_ukernel__neon(const float* x, size_t rows, size_t channels, uint64_t* out) {
  const size_t words = words_for(channels);
  const float32x4_t zero = vdupq_n_f32(0.0f);
  static const uint8_t kWeights[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t weights = vld1q_u8(kWeights);
  if (channels % 64 == 0) {  // whole words: the rows are one run of words, no tails
    for (size_t w = 0; w < rows * words; ++w) out[w] = sign_word(x + w * 64, zero, weights);
    return;
  }
  const size_t whole = channels / 64, tail = channels % 64;
  for (size_t r = 0; r < rows; ++r) {
    const float* row = x + r * channels;
    uint64_t* dst = out + r * words;
    for (size_t w = 0; w < whole; ++w) dst[w] = sign_word(row + w * 64, zero, weights);
    // The last word's missing channels read as +0.0, whose bit is 0, as the format requires.
    float last[64] = {0.0f};
    std::memcpy(last, row + whole * 64, tail * sizeof(float));
    dst[whole] = sign_word(last, zero, weights);
  }
}

}  // namespace irnet
