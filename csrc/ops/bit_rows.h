// Bit fields packed back to back into 64-bit words, low bits first: how a binary convolution
// with fewer than 64 input channels lays out its input rows and its GEMM rows, so that a 3x3
// layer with 16 channels needs 3 words per pixel instead of 9.
#pragma once
#include <cstdint>
#include <cstring>

namespace irnet {

// Appends fields to consecutive words starting at `dst`.
class BitWriter {
 public:
  explicit BitWriter(uint64_t* dst) : dst_(dst) {}
  // Appends the low `bits` bits of v (1..64; the bits above must be 0).
  void put(uint64_t v, int bits) {
    acc_ |= v << used_;  // used_ < 64
    used_ += bits;
    if (used_ >= 64) {  // a full word: store it and keep the bits of v that did not fit
      *dst_++ = acc_;
      used_ -= 64;
      acc_ = used_ ? v >> (bits - used_) : 0;
    }
  }
  // Stores the last, partly filled word (its unused high bits 0).
  void flush() {
    if (used_) *dst_ = acc_;
  }

 private:
  uint64_t* dst_;
  uint64_t acc_ = 0;
  int used_ = 0;
};

// The largest field read_bits can return: a 64-bit load at a byte boundary holds at least 57
// bits that start at any bit of its first byte.
constexpr int kMaxReadBits = 56;

// Bits [bit, bit + bits) of a word array, bits <= kMaxReadBits; the 8 bytes from byte bit / 8
// must be readable. Little-endian: bit b of the array is bit b % 8 of byte b / 8.
inline uint64_t read_bits(const uint64_t* words, uint64_t bit, int bits) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "bit rows assume little-endian words");
  uint64_t v;
  std::memcpy(&v, reinterpret_cast<const unsigned char*>(words) + bit / 8, sizeof v);
  return (v >> (bit % 8)) & ((uint64_t(1) << bits) - 1);
}

}  // namespace irnet
