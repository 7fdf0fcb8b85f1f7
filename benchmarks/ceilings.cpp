// One-core peak loops, register-resident, many independent chains, so each reports the
// throughput of its instructions and nothing else. Printed as JSON on one line:
//   popcnt64_bit_macs:   acc += popcnt(a ^ w) on 64-bit words (scalar popcnt), bit-MACs/s
//   avx2_lut_bit_macs:   XOR + nibble-LUT vpshufb popcount of 256-bit vectors, byte counts
//                        added (no widening: the loop's own minimum), bit-MACs/s
//   avx2_nibble_bit_macs: the AVX2 binary GEMM's own instruction mix (kernels/bgemm-avx2.cpp:
//                        operands split into nibbles, so per 32 nibbles one XOR, one vpshufb
//                        lookup, one byte add), from registers, its 4 x 8 tile's 8 counters;
//                        bit-MACs/s
//   avx2_nibble_l1_bit_macs: the same tile with its operands loaded as the kernel loads them, from
//                        an L1-resident buffer (per word: 8 vpbroadcastq of A's split words and 4
//                        loads of B's), no epilogue: the fastest the kernel's word loop can go
//   avx2_hs_bit_macs:    the mix that kernel had before (XOR of 7 words, carry-save adders, 3
//                        nibble-LUT lookups per 7 words) from registers, 4 independent chains
//   fma_f32_macs:        vfmadd231ps on 256-bit (AVX2) vectors, fp32 MACs/s
//   madd_i16_macs:       vpmaddwd + vpaddd on 256-bit vectors (16 int16 products into int32
//                        sums per pair), MACs/s: the fastest exact integer dot product AVX2
//                        has without VNNI, the ceiling of an integer stem on such a CPU
// Built and run by the benchmark suite (benchmarks/ceilings.py) on x86-64 with AVX2.
#include <immintrin.h>

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace {

constexpr int kL1Words = 31;  // the kernel's words between two widenings of the byte counters

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Best of a few runs: the machine may be shared, and a peak is the fastest the core goes.
template <class F>
double best_rate(F body, double work_per_call) {
  double best = 0;
  for (int rep = 0; rep < 40; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    body();
    const double rate = work_per_call / seconds_since(t0);
    if (rate > best) best = rate;
  }
  return best;
}

__attribute__((noinline, target("popcnt"))) uint64_t popcnt_loop(uint64_t iters, uint64_t seed) {
  uint64_t a[8], acc[8] = {};
  for (int i = 0; i < 8; ++i) a[i] = seed * (i + 3) + 0x9e3779b97f4a7c15ULL;
  for (uint64_t n = 0; n < iters; ++n) {
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      acc[i] += uint64_t(__builtin_popcountll(a[i] ^ n));
      asm volatile("" : "+r"(a[i]));
    }
  }
  uint64_t s = 0;
  for (int i = 0; i < 8; ++i) s += acc[i];
  return s;
}

__attribute__((noinline, target("avx2"))) uint64_t lut_loop(uint64_t iters, uint64_t seed) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  __m256i a[4], acc[4];
  for (int i = 0; i < 4; ++i) {
    a[i] = _mm256_set1_epi64x(int64_t(seed * (i + 5)));
    acc[i] = _mm256_setzero_si256();
  }
  __m256i w = _mm256_set1_epi64x(int64_t(seed ^ 0x5555));
  for (uint64_t n = 0; n < iters; ++n) {
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const __m256i x = _mm256_xor_si256(a[i], w);
      const __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(x, low));
      const __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low));
      acc[i] = _mm256_add_epi8(acc[i], _mm256_add_epi8(lo, hi));
      asm volatile("" : "+x"(a[i]));
    }
  }
  __m256i s = _mm256_add_epi8(_mm256_add_epi8(acc[0], acc[1]), _mm256_add_epi8(acc[2], acc[3]));
  return uint64_t(_mm256_extract_epi64(s, 0));
}

__attribute__((target("avx2"))) inline void csa(__m256i& sum, __m256i& carry, __m256i a, __m256i b, __m256i c) {
  const __m256i u = _mm256_xor_si256(a, b);
  sum = _mm256_xor_si256(u, c);
  carry = _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(u, c));
}

__attribute__((target("avx2"))) inline __m256i lookup(__m256i x, __m256i lut, __m256i low) {
  return _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(x, low)),
                         _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low)));
}

__attribute__((noinline, target("avx2"))) uint64_t hs_loop(uint64_t iters, uint64_t seed) {
  const __m256i lut1 = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i lut2 = _mm256_add_epi8(lut1, lut1), lut4 = _mm256_add_epi8(lut2, lut2);
  const __m256i low = _mm256_set1_epi8(0x0f);
  __m256i w = _mm256_set1_epi64x(int64_t(seed)), acc[4];
  for (int i = 0; i < 4; ++i) acc[i] = _mm256_setzero_si256();
  for (uint64_t n = 0; n < iters; ++n) {
    asm volatile("" : "+x"(w));
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      __m256i x[7];
#pragma GCC unroll 7
      for (int t = 0; t < 7; ++t) x[t] = _mm256_xor_si256(w, _mm256_set1_epi64x(int64_t(i * 7 + t)));
      __m256i ones, c1, c2, c3, twos, fours;
      csa(ones, c1, x[0], x[1], x[2]);
      csa(ones, c2, ones, x[3], x[4]);
      csa(ones, c3, ones, x[5], x[6]);
      csa(twos, fours, c1, c2, c3);
      acc[i] = _mm256_add_epi8(acc[i], _mm256_add_epi8(_mm256_add_epi8(lookup(ones, lut1, low), lookup(twos, lut2, low)),
                                                       lookup(fours, lut4, low)));
    }
  }
  __m256i s = _mm256_add_epi8(_mm256_add_epi8(acc[0], acc[1]), _mm256_add_epi8(acc[2], acc[3]));
  return uint64_t(_mm256_extract_epi64(s, 0));
}

__attribute__((noinline, target("avx2"))) uint64_t nibble_loop(uint64_t iters, uint64_t seed) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  __m256i b[4], acc[8];
  for (int v = 0; v < 4; ++v) b[v] = _mm256_and_si256(_mm256_set1_epi64x(int64_t(seed * (v + 3))), low);
  for (int i = 0; i < 8; ++i) acc[i] = _mm256_setzero_si256();
  __m256i lo = _mm256_and_si256(_mm256_set1_epi64x(int64_t(seed)), low), hi = _mm256_srli_epi16(lo, 1);
  for (uint64_t n = 0; n < iters; ++n) {
    asm volatile("" : "+x"(lo), "+x"(hi));
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r)  // the tile's 4 rows (two nibble words each), 2 counters per row
#pragma GCC unroll 2
      for (int v = 0; v < 2; ++v) {
        acc[2 * r + v] = _mm256_add_epi8(acc[2 * r + v], _mm256_shuffle_epi8(lut, _mm256_xor_si256(lo, b[v])));
        acc[2 * r + v] = _mm256_add_epi8(acc[2 * r + v], _mm256_shuffle_epi8(lut, _mm256_xor_si256(hi, b[2 + v])));
      }
  }
  __m256i s = acc[0];
  for (int i = 1; i < 8; ++i) s = _mm256_add_epi8(s, acc[i]);
  return uint64_t(_mm256_extract_epi64(s, 0));
}

// One row of the tile at A offset `off` (bytes): its two nibble words broadcast, each XORed with
// B's 4 + 4 column vectors, looked up, added to the row's counters c0 and c1.
#define IRN_L1_ROW(off, c0, c1)                                                                          \
  "vpbroadcastq " #off "(%[a]), %%ymm9\n\tvpbroadcastq " #off "+8(%[a]), %%ymm10\n\t"                   \
  "vpxor %%ymm12, %%ymm9, %%ymm11\n\tvpshufb %%ymm11, %%ymm8, %%ymm11\n\tvpaddb %%ymm11, " c0 ", " c0 "\n\t" \
  "vpxor %%ymm14, %%ymm10, %%ymm11\n\tvpshufb %%ymm11, %%ymm8, %%ymm11\n\tvpaddb %%ymm11, " c0 ", " c0 "\n\t" \
  "vpxor %%ymm13, %%ymm9, %%ymm11\n\tvpshufb %%ymm11, %%ymm8, %%ymm11\n\tvpaddb %%ymm11, " c1 ", " c1 "\n\t" \
  "vpxor %%ymm15, %%ymm10, %%ymm11\n\tvpshufb %%ymm11, %%ymm8, %%ymm11\n\tvpaddb %%ymm11, " c1 ", " c1 "\n\t"

// Registers: counters ymm0-7, table ymm8, A's two nibble words ymm9-10, lookup ymm11, B ymm12-15
// (the kernel's own allocation, written out: its loop is inline assembly for the same reason).
// One asm statement holds the loops, so the counters stay in their registers throughout.
__attribute__((noinline, target("avx2"))) uint64_t nibble_l1_loop(uint64_t iters, const uint64_t* a0, const uint64_t* b0) {
  alignas(32) uint64_t counts[4];
  const uint64_t *a, *b;
  uint64_t k;
  asm volatile(
      "vpxor %%ymm0, %%ymm0, %%ymm0\n\tvmovdqa %%ymm0, %%ymm1\n\tvmovdqa %%ymm0, %%ymm2\n\t"
      "vmovdqa %%ymm0, %%ymm3\n\tvmovdqa %%ymm0, %%ymm4\n\tvmovdqa %%ymm0, %%ymm5\n\t"
      "vmovdqa %%ymm0, %%ymm6\n\tvmovdqa %%ymm0, %%ymm7\n\tvpcmpeqb %%ymm8, %%ymm8, %%ymm8\n\t"
      "2:\n\tmov %[a0], %[a]\n\tmov %[b0], %[b]\n\tmov %[words], %[k]\n\t"
      "1:\n\t"
      "vmovdqu (%[b]), %%ymm12\n\tvmovdqu 32(%[b]), %%ymm13\n\tvmovdqu 64(%[b]), %%ymm14\n\tvmovdqu 96(%[b]), %%ymm15\n\t"
      IRN_L1_ROW(0, "%%ymm0", "%%ymm1") IRN_L1_ROW(16, "%%ymm2", "%%ymm3")
      IRN_L1_ROW(32, "%%ymm4", "%%ymm5") IRN_L1_ROW(48, "%%ymm6", "%%ymm7")
      "add $64, %[a]\n\tsub $-128, %[b]\n\tdec %[k]\n\tjnz 1b\n\t"
      "dec %[n]\n\tjnz 2b\n\t"
      "vpaddb %%ymm1, %%ymm0, %%ymm0\n\tvpaddb %%ymm7, %%ymm0, %%ymm0\n\tvmovdqa %%ymm0, %[c]\n\t"
      : [n] "+r"(iters), [a] "=&r"(a), [b] "=&r"(b), [k] "=&r"(k), [c] "=m"(counts)
      : [a0] "r"(a0), [b0] "r"(b0), [words] "i"(kL1Words)
      : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
  return counts[0];
}

#undef IRN_L1_ROW

__attribute__((noinline, target("avx2,fma"))) float fma_loop(uint64_t iters) {
  __m256 acc[10];
  const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(1e-3f);
  for (int i = 0; i < 10; ++i) acc[i] = _mm256_set1_ps(float(i));
  for (uint64_t n = 0; n < iters; ++n)
#pragma GCC unroll 10
    for (int i = 0; i < 10; ++i) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
  __m256 s = acc[0];
  for (int i = 1; i < 10; ++i) s = _mm256_add_ps(s, acc[i]);
  return _mm256_cvtss_f32(s);
}

__attribute__((noinline, target("avx2"))) uint64_t madd_loop(uint64_t iters, uint64_t seed) {
  __m256i acc[10];
  const __m256i x = _mm256_set1_epi16(int16_t(seed | 1)), y = _mm256_set1_epi16(255);
  for (int i = 0; i < 10; ++i) acc[i] = _mm256_set1_epi32(i);
  for (uint64_t n = 0; n < iters; ++n)
#pragma GCC unroll 10
    for (int i = 0; i < 10; ++i) {
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(x, y));
      asm volatile("" : "+x"(acc[i]));  // keeps the 10 independent chains from being folded
    }
  __m256i s = acc[0];
  for (int i = 1; i < 10; ++i) s = _mm256_add_epi32(s, acc[i]);
  return uint64_t(_mm256_extract_epi32(s, 0));
}

}  // namespace

int main() {
  const uint64_t iters = 2'000'000;
  volatile uint64_t sink = 0;
  volatile float fsink = 0;
  const double popcnt = best_rate([&] { sink = sink + popcnt_loop(iters, sink + 1); }, double(iters) * 8 * 64);
  const double lut = best_rate([&] { sink = sink + lut_loop(iters, sink + 1); }, double(iters) * 4 * 256);
  const double hs = best_rate([&] { sink = sink + hs_loop(iters / 4, sink + 1); }, double(iters / 4) * 4 * 7 * 256);
  const double nibble = best_rate([&] { sink = sink + nibble_loop(iters / 4, sink + 1); }, double(iters / 4) * 4 * 8 * 64);
  alignas(64) static uint64_t a_words[kL1Words * 8], b_words[kL1Words * 16];
  for (int i = 0; i < kL1Words * 16; ++i) b_words[i] = 0x0f0f0f0f0f0f0f0fULL & (0x9e3779b97f4a7c15ULL * uint64_t(i + 1));
  for (int i = 0; i < kL1Words * 8; ++i) a_words[i] = 0x0f0f0f0f0f0f0f0fULL & (0xc2b2ae3d27d4eb4fULL * uint64_t(i + 1));
  // iters / 4 / kL1Words >= 1: the loop runs its outer count down to 0 once.
  const double nibble_l1 = best_rate([&] { sink = sink + nibble_l1_loop(iters / 4 / kL1Words, a_words, b_words); },
                                     double(iters / 4 / kL1Words) * kL1Words * 4 * 8 * 64);
  const double fma = best_rate([&] { fsink = fsink + fma_loop(iters); }, double(iters) * 10 * 8);
  const double madd = best_rate([&] { sink = sink + madd_loop(iters, sink + 1); }, double(iters) * 10 * 16);
  std::printf("{\"popcnt64_bit_macs\": %.6g, \"avx2_lut_bit_macs\": %.6g, \"avx2_hs_bit_macs\": %.6g, "
              "\"avx2_nibble_bit_macs\": %.6g, \"avx2_nibble_l1_bit_macs\": %.6g, \"fma_f32_macs\": %.6g, "
              "\"madd_i16_macs\": %.6g}\n", popcnt, lut, hs, nibble, nibble_l1, fma, madd);
  return int(sink & 0) + int(fsink * 0);
}
