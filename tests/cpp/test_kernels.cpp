// Kernel tests: every ISA this CPU runs against plain reference loops (for the binary GEMM, a
// naive double-precision oracle written from the definition, not the engine's epilogue), over sizes that hit
// every tail (M < MR, N not a multiple of NR, K words from 1 to past the unroll, SGEMM K in
// one or several segments). Binary GEMM outputs and bit-packing must be identical; SGEMM within
// float rounding.
// Every kernel of every <job>.inc list runs where this CPU has its ISA (bit pooling against a
// naive oracle and the scalar kernel); SGEMM, which has no list yet, per available config.
// Also: every built ISA's config is complete, CPU feature decoding of made-up CPUs, and the
// binary GEMM's contract check.
// Run directly or through ctest; exits non-zero on any mismatch. Runs under qemu for NEON.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "common.h"
#include "kernels/config.h"
#include "kernels/cpu_features.h"

using namespace irnet;

namespace {

int failures = 0;

void expect(bool ok, const char* what, const char* isa, size_t m, size_t n, size_t k) {
  if (ok) return;
  ++failures;
  std::printf("FAIL %s [%s] m=%zu n=%zu k=%zu\n", what, isa, m, n, k);
}

// A left operand of m rows and k words, row-major (row i at i * k) or scattered: rows and
// words at arbitrary offsets in a larger buffer, as a convolution reads taps in place.
struct Lhs {
  std::vector<uint64_t> words;
  std::vector<uint32_t> row_offsets, k_offsets;
  BgemmLhs view() const { return {words.data(), row_offsets.data(), k_offsets.data(), k_offsets.size()}; }
};

Lhs make_lhs(size_t m, size_t k, bool scattered, std::mt19937_64& rng) {
  Lhs a;
  const size_t row_stride = scattered ? 3 * k + 5 : k;
  a.words.resize(m * row_stride + 3 * k + 5);
  for (auto& x : a.words) x = rng();
  for (size_t i = 0; i < m; ++i) a.row_offsets.push_back(uint32_t(scattered ? (m - 1 - i) * row_stride : i * k));
  for (size_t w = 0; w < k; ++w) a.k_offsets.push_back(uint32_t(scattered ? (w * 7) % (3 * k + 5) : w));
  return a;
}

// The binary GEMM's output, element (i, j), from its definition, in double and written without
// the engine's helpers: a dot of +/-1 values (bit 0 = +1, bit 1 = -1) over the 64 * k bit pairs,
// less the 64 * k - k_bits pairs that are not real products (in a convolution: the zero tail
// bits, each pair (+1)(+1) = +1), less the row's padding correction; then dot * mul + bias
// rounded to float once (a fused multiply-add, as PyTorch's BatchNorm after a conv rounds),
// plus the residual in float, clamped. dot * mul + bias is exact in double for the tests'
// values (|dot| < 2^13, floats mul and bias of similar size: under 53 bits from the sum's top
// to the lowest bit of either term), checked below, so one conversion to float is the
// correctly rounded fused result.
float reference_output(const Lhs& lhs, const std::vector<uint64_t>& b, size_t k, const BgemmOutput& o,
                       size_t i, size_t j) {
  double dot = 0;
  for (size_t w = 0; w < k; ++w) {
    const uint64_t x = lhs.words[lhs.row_offsets[i] + lhs.k_offsets[w]], y = b[j * k + w];
    for (int bit = 0; bit < 64; ++bit) dot += ((x >> bit) & 1 ? -1.0 : 1.0) * ((y >> bit) & 1 ? -1.0 : 1.0);
  }
  dot -= double(64 * k) - double(o.k_bits);
  if (o.correction && o.correction[i]) dot -= double(o.correction[i][j]);
  const double product = dot * double(o.mul[j]), addend = double(o.bias[j]);
  const double sum = product + addend, addend_part = sum - product;
  const double sum_error = (product - (sum - addend_part)) + (addend - addend_part);  // TwoSum
  if (sum_error != 0.0) return NAN;  // the oracle would round twice: fail the comparison
  float v = float(sum);
  if (o.residual) v = float(double(v) + double(o.residual[i * o.ldo + j]));
  return std::min(std::max(v, o.lo), o.hi);
}

// Where column col starts in a packed B (bgemm.h; an SGEMM panel holds k values per column).
inline size_t packed_offset(const BgemmKernel& kernel, size_t col, size_t k) { return bgemm_packed_offset(kernel, col, k); }
template <class Kernel>
size_t packed_offset(const Kernel&, size_t col, size_t k) { return col * k; }

// Split along output channels at a panel boundary, as threads share a row block: the two
// calls must give exactly `whole`, the result of one call over all n columns.
template <class Kernel, class Lhs, class Output, class T>
bool same_when_split(const Kernel& kernel, size_t m, size_t n, size_t k, const Lhs& a, const T* packed,
                     Output o, const std::vector<float>& whole) {
  std::vector<float> split(m * n);
  Output o1 = o, o2 = o;
  o1.out = o2.out = split.data();
  o2.col = kernel.nr;
  kernel.run(m, kernel.nr, a, packed, o1);
  kernel.run(m, n - kernel.nr, a, packed + packed_offset(kernel, kernel.nr, k), o2);
  return split == whole;
}

void test_bgemm(const BgemmKernel& kernel, const char* name, std::mt19937_64& rng) {
  const size_t ms[] = {1, 3, 4, 5, 9, 17};
  const size_t ns[] = {1, 7, 8, 9, 31, 32, 33, 70};
  // 129: rows in two chunks of the AVX2 kernel's split buffer (from 13 rows on); 520: K in two
  // pieces (bgemm-avx2.cpp). Those two only with 17 rows and up to 33 columns (time under qemu).
  const size_t ks[] = {1, 2, 8, 9, 31, 32, 33, 70, 129, 520};
  for (size_t m : ms)
    for (size_t n : ns)
      for (size_t k : ks)
        for (bool scattered : {false, true}) {
          if (k > 70 && (m != 17 || n > 33)) continue;
          const Lhs lhs = make_lhs(m, k, scattered, rng);
          const BgemmLhs a = lhs.view();
          std::vector<uint64_t> b(n * k);
          for (auto& x : b) x = rng();
          std::vector<float> mul(n), bias(n), residual(m * n), out(m * n);
          std::vector<std::vector<int32_t>> corr(m, std::vector<int32_t>(n));
          std::vector<const int32_t*> rows(m);
          // Half the cases: a power of two times 1 or -0.75 and biases in eighths, exact in any
          // order of rounding; the other half: any floats (a folded BatchNorm), where a multiply
          // then an add would round differently from the fused multiply-add in many elements.
          const bool any_floats = rng() % 2;
          std::uniform_real_distribution<float> half_to_3_halves(0.5f, 1.5f), hundreds(-300.0f, 300.0f);
          for (size_t j = 0; j < n; ++j) {
            mul[j] = any_floats ? half_to_3_halves(rng) * (rng() % 2 ? 1.0f : -1.0f)
                                : std::ldexp(1.0f, int(rng() % 7) - 3) * (rng() % 2 ? 1.0f : -0.75f);
            bias[j] = any_floats ? hundreds(rng) : float(int(rng() % 200) - 100) / 8.0f;
          }
          for (size_t i = 0; i < m; ++i) {
            rows[i] = i % 3 == 1 ? nullptr : corr[i].data();
            for (size_t j = 0; j < n; ++j) {
              corr[i][j] = int32_t(rng() % 64) - 32;
              residual[i * n + j] = float(int(rng() % 100) - 50) / 4.0f;
            }
          }
          const int32_t k_bits = int32_t(k * 64 - rng() % 10);
          // Residual and clamp each on in half the cases: kernels specialize on both.
          const size_t fused = (m + n + k) % 4;
          const float lo = fused & 1 ? -20.0f : -INFINITY, hi = fused & 1 ? 30.0f : INFINITY;
          const BgemmOutput o{k_bits, mul.data(), bias.data(), rows.data(), fused & 2 ? residual.data() : nullptr,
                              lo, hi, out.data(), n};
          const std::vector<uint64_t> packed = bgemm_pack_b(n, k, kernel, b.data());
          kernel.run(m, n, a, packed.data(), o);
          bool ok = true;
          for (size_t i = 0; i < m; ++i)
            for (size_t j = 0; j < n; ++j) ok = ok && out[i * n + j] == reference_output(lhs, b, k, o, i, j);
          expect(ok, scattered ? "bgemm scattered lhs" : "bgemm", name, m, n, k);
          expect(bgemm_contract_violation(n, a, o, kernel) == nullptr, "bgemm contract of the test case", name, m,
                 n, k);
          if (n > kernel.nr)
            expect(same_when_split(kernel, m, n, k, a, packed.data(), o, out), "bgemm column split", name, m, n, k);
        }
}

void test_bitpack(BitpackFn bitpack, const char* name, std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  for (size_t channels : {1, 3, 8, 15, 16, 17, 32, 63, 64, 65, 130, 256}) {
    const size_t rows = 7;
    std::vector<float> x(rows * channels);
    for (auto& v : x) v = normal(rng);
    x[0] = 0.0f;
    if (x.size() > 1) x[1] = -0.0f;
    if (x.size() > 2) x[2] = std::numeric_limits<float>::quiet_NaN();  // NaN is +1 (not < 0)
    x.back() = -0.0f;  // in the rows after the last whole group of 64 floats, too
    const size_t words = words_for(channels);
    std::vector<uint64_t> got(rows * words, ~uint64_t(0)), want(rows * words, 0);
    bitpack(x.data(), rows, channels, got.data());
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < channels; ++c)
        if (x[r * channels + c] < 0.0f) want[r * words + c / 64] |= uint64_t(1) << (c % 64);
    expect(got == want, "bitpack", name, rows, channels, words);
  }
}

// A left operand of m rows of `segs` segments of seg_len floats, packed (one row-major matrix)
// or scattered: rows in reverse order with gaps, segments out of order, as a conv reads its taps.
struct FloatLhs {
  std::vector<float> floats;
  std::vector<const float*> rows;
  std::vector<size_t> seg_offsets;
  SgemmLhs view(size_t segs, size_t seg_len) const { return {rows.data(), seg_offsets.data(), segs, seg_len}; }
};

FloatLhs make_float_lhs(size_t m, size_t segs, size_t seg_len, bool scattered, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  FloatLhs a;
  const size_t k = segs * seg_len, seg_stride = scattered ? seg_len + 3 : seg_len;
  const size_t lda = scattered ? 2 * seg_stride * segs + 1 : k;
  for (size_t s = 0; s < segs; ++s) a.seg_offsets.push_back((scattered ? segs - 1 - s : s) * seg_stride);
  a.floats.resize(m * lda + seg_stride * segs);
  for (auto& v : a.floats) v = u(rng);
  for (size_t i = 0; i < m; ++i) a.rows.push_back(a.floats.data() + (scattered ? m - 1 - i : i) * lda);
  return a;
}

void test_sgemm(const char* isa, const SgemmKernel& kernel, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const size_t shapes[][2] = {{1, 1}, {1, 3}, {1, 147}, {7, 21}, {3, 5}, {2, 64}};  // segs, seg_len
  for (size_t m : {1, 4, 5, 7, 8, 12, 13, 25, 49, 64})
    for (size_t n : {1, 15, 16, 17, 33, 64, 65})
      for (const auto& shape : shapes)
        for (bool scattered : {false, true}) {
          const size_t segs = shape[0], seg_len = shape[1], k = segs * seg_len;
          const FloatLhs lhs = make_float_lhs(m, segs, seg_len, scattered, rng);
          const SgemmLhs a = lhs.view(segs, seg_len);
          std::vector<float> b(k * n), mul(n), bias(n), residual(m * n), out(m * n, 1e30f);
          for (auto& v : b) v = u(rng);
          for (size_t j = 0; j < n; ++j) {
            mul[j] = 0.5f + u(rng);
            bias[j] = u(rng);
          }
          for (auto& v : residual) v = u(rng);
          // Every other case without residual and clamp, which the kernels skip or pass through.
          const bool fused = (m + n + k) % 2 == 0;
          const float lo = fused ? -0.5f * std::sqrt(float(k)) : -INFINITY, hi = fused ? 0.25f * std::sqrt(float(k)) : INFINITY;
          const SgemmOutput o{mul.data(), bias.data(), fused ? residual.data() : nullptr, lo, hi, out.data(), n};
          const SgemmPackedB packed = sgemm_pack_b(k, n, kernel.nr, b.data());
          kernel.run(m, n, a, packed.data(), o);
          bool ok = true;
          for (size_t i = 0; i < m; ++i)
            for (size_t j = 0; j < n; ++j) {
              double acc = 0;
              for (size_t p = 0; p < k; ++p) acc += double(a.at(i, p)) * b[p * n + j];
              const float want = sgemm_output_value(o, i, j, float(acc));
              ok = ok && std::fabs(out[i * n + j] - want) <= 1e-5 * double(k);
            }
          expect(ok, scattered ? "sgemm scattered lhs" : "sgemm", isa, m, n, k);
          if (n > kernel.nr)
            expect(same_when_split(kernel, m, n, k, a, packed.data(), o, out), "sgemm column split", isa, m, n, k);
          // Rows split anywhere (threads take blocks of pixels): the same bits.
          if (m > 1) {
            std::vector<float> split(m * n);
            SgemmOutput o1 = o;
            o1.out = split.data();
            const size_t m1 = m / 3 + 1;
            SgemmOutput o2 = o1;
            o2.out += m1 * n;
            if (o2.residual) o2.residual += m1 * n;
            const SgemmLhs a2{a.rows + m1, a.seg_offsets, segs, seg_len};
            kernel.run(m1, n, a, packed.data(), o1);
            kernel.run(m - m1, n, a2, packed.data(), o2);
            expect(split == out, "sgemm row split", isa, m, n, k);
          }
        }
  // The contract check accepts the calls above and names what a bad one breaks.
  const FloatLhs lhs = make_float_lhs(kernel.mr, 1, 4, false, rng);
  const SgemmPackedB packed(kernel.nr * 4 + 64, 0.0f);
  const SgemmTile good{kernel.mr, kernel.nr, lhs.rows.data(), lhs.seg_offsets.data(), 1, 4, packed.data(), 0, 0};
  bool ok = *sgemm_contract_violation(kernel.mr, kernel.nr, good) == '\0';
  SgemmTile bad = good;
  bad.mr = kernel.mr + 1;
  ok = ok && *sgemm_contract_violation(kernel.mr, kernel.nr, bad) != '\0';
  bad = good;
  bad.nc = 0;
  ok = ok && *sgemm_contract_violation(kernel.mr, kernel.nr, bad) != '\0';
  bad = good;
  bad.seg_len = 0;
  ok = ok && *sgemm_contract_violation(kernel.mr, kernel.nr, bad) != '\0';
  bad = good;
  bad.b = packed.data() + 1;
  ok = ok && *sgemm_contract_violation(kernel.mr, kernel.nr, bad) != '\0';
  expect(ok, "sgemm contract check", isa, kernel.mr, kernel.nr, 4);
}

void test_maxpool(MaxPoolFn maxpool, const char* name, std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  for (size_t channels : {1, 7, 16, 31, 32, 64, 65, 130})
    for (size_t n_taps : {1, 4, 9}) {
      std::vector<std::vector<float>> maps(n_taps, std::vector<float>(channels));
      std::vector<const float*> taps;
      for (auto& m : maps) {
        for (auto& v : m) v = normal(rng);
        taps.push_back(m.data());
      }
      // A NaN in the first tap and one in the last must both win.
      maps[0][0] = std::nanf("");
      if (channels > 1) maps[n_taps - 1][channels - 1] = std::nanf("");
      std::vector<float> got(channels, 0.0f);
      maxpool(taps.data(), n_taps, channels, got.data());
      bool ok = true;
      for (size_t c = 0; c < channels; ++c) {
        bool nan = false;
        float want = -INFINITY;
        for (size_t t = 0; t < n_taps; ++t) {
          nan = nan || std::isnan(maps[t][c]);
          want = std::max(want, maps[t][c]);
        }
        ok = ok && (nan ? std::isnan(got[c]) : got[c] == want);
      }
      expect(ok, "maxpool", name, n_taps, channels, 0);
    }
  // Equal taps of opposite zero signs: the first one stays, bit for bit, on every ISA (NEON's
  // FMAX alone would pick +0.0).
  for (size_t channels : {1, 5, 16, 37}) {
    const std::vector<float> neg(channels, -0.0f), pos(channels, 0.0f);
    for (int order = 0; order < 2; ++order) {
      const float* taps[2] = {order ? pos.data() : neg.data(), order ? neg.data() : pos.data()};
      std::vector<float> got(channels, 1.0f);
      maxpool(taps, 2, channels, got.data());
      bool ok = true;
      for (float v : got) ok = ok && v == 0.0f && std::signbit(v) == (order == 0);
      expect(ok, "maxpool signed zeros", name, 2, channels, 0);
    }
  }
}

// Bit max pooling: the AND of the taps' words, against a naive oracle written per channel from
// the definition (a pooled channel is -1 only if it is -1 in every tap) and the scalar kernel.
// Word counts cover every tail of the SIMD tiles (1 to past 2 x 8 words).
void test_bitpool(BitPoolFn bitpool, const char* name, std::mt19937_64& rng) {
  for (size_t words : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33})
    for (size_t n_taps : {1, 2, 3, 4, 9}) {
      std::vector<std::vector<uint64_t>> maps(n_taps, std::vector<uint64_t>(words));
      std::vector<const uint64_t*> taps;
      for (auto& m : maps) {
        // Mostly ones, so that ANDs over 9 taps still leave bits set.
        for (auto& w : m) w = rng() | rng() | rng();
        taps.push_back(m.data());
      }
      std::vector<uint64_t> got(words + 1, 0x5a5a5a5a5a5a5a5a), scalar(words);
      bitpool(taps.data(), n_taps, words, got.data());
      irn_bitpool_b1_ukernel_c64__scalar(taps.data(), n_taps, words, scalar.data());
      bool ok = got[words] == 0x5a5a5a5a5a5a5a5a;  // nothing written past the end
      for (size_t c = 0; c < words * 64; ++c) {
        bool negative = true;
        for (size_t t = 0; t < n_taps; ++t) negative = negative && ((maps[t][c / 64] >> (c % 64)) & 1);
        ok = ok && ((got[c / 64] >> (c % 64)) & 1) == uint64_t(negative);
      }
      expect(ok, "bitpool", name, n_taps, words, 0);
      expect(std::equal(scalar.begin(), scalar.end(), got.begin()), "bitpool vs scalar", name, n_taps, words, 0);
    }
}

// Every ISA this build has and this CPU runs has a kernel for every job; bad names are refused.
void test_configs() {
  const std::vector<std::string> all = all_isas();
  for (const std::string& isa : available_isas()) {
    bool listed = std::find(all.begin(), all.end(), isa) != all.end();
    const char* why = nullptr;
    try {
      const KernelConfig& c = kernel_config(isa);
      listed = listed && c.bitpack && c.bgemm.run && c.sgemm.ukernel && c.maxpool && c.bitpool && isa == c.isa;
    } catch (const Error& e) {
      why = e.what();
    }
    if (why) std::printf("%s\n", why);
    expect(listed && !why, "complete config", isa.c_str(), 0, 0, 0);
  }
  expect(available_isas().back() == "scalar" && all.back() == "scalar", "scalar last", "", 0, 0, 0);
  bool refused = false;
  try {
    kernel_config("sse9");
  } catch (const Error&) {
    refused = true;
  }
  expect(refused, "unknown ISA refused", "sse9", 0, 0, 0);
}

// Decoding made-up CPUs: AVX-512 needs every extension its files are compiled with (F, BW, VL,
// DQ, VPOPCNTDQ, FMA) and the OS saving zmm state; AVX2 needs FMA and ymm state.
void test_cpu_features() {
  X86CpuidRegs full;
  full.leaf1_ecx = 1u << 27 | 1u << 12;  // OSXSAVE, FMA
  full.has_leaf7 = true;
  full.leaf7_ebx = 1u << 5 | 1u << 16 | 1u << 17 | 1u << 30 | 1u << 31;  // AVX2, F, DQ, BW, VL
  full.leaf7_ecx = 1u << 14;                                            // VPOPCNTDQ
  full.xcr0 = 0xe7;
  const CpuFeatures f = decode_x86_features(full);
  expect(f.avx2 && f.avx512, "decode: every feature", "x86", 0, 0, 0);
  struct Drop {
    const char* what;
    uint32_t X86CpuidRegs::*reg;
    uint32_t bit;
    bool avx2_stays;
  };
  const Drop drops[] = {{"AVX512F", &X86CpuidRegs::leaf7_ebx, 1u << 16, true},
                        {"AVX512DQ", &X86CpuidRegs::leaf7_ebx, 1u << 17, true},
                        {"AVX512BW", &X86CpuidRegs::leaf7_ebx, 1u << 30, true},
                        {"AVX512VL", &X86CpuidRegs::leaf7_ebx, 1u << 31, true},
                        {"VPOPCNTDQ", &X86CpuidRegs::leaf7_ecx, 1u << 14, true},
                        {"zmm state (XCR0 0xe0)", &X86CpuidRegs::xcr0, 0xe0, true},
                        {"ymm state (XCR0 0x4)", &X86CpuidRegs::xcr0, 0x4, false},
                        {"FMA", &X86CpuidRegs::leaf1_ecx, 1u << 12, false},
                        {"OSXSAVE", &X86CpuidRegs::leaf1_ecx, 1u << 27, false}};
  for (const Drop& d : drops) {
    X86CpuidRegs r = full;
    r.*d.reg &= ~d.bit;
    const CpuFeatures g = decode_x86_features(r);
    const bool ok = !g.avx512 && g.avx2 == d.avx2_stays;
    if (!ok) std::printf("FAIL decode without %s\n", d.what);
    expect(ok, "decode: one feature missing", "x86", 0, 0, 0);
  }
  X86CpuidRegs no_leaf7 = full;
  no_leaf7.has_leaf7 = false;
  expect(!decode_x86_features(no_leaf7).avx2, "decode: no leaf 7", "x86", 0, 0, 0);
  const CpuFeatures& here = cpu_features();
  std::printf("this CPU: avx512 %d, avx2 %d, neon %d\n", here.avx512, here.avx2, here.neon);
}

// The binary GEMM's contract check refuses each broken clause it covers.
void test_bgemm_contract() {
  const BgemmKernel kernel{8, 64, irn_bgemm_f32_ukernel_1x8__scalar};
  const uint32_t offsets[4] = {0, 1, 2, 3};
  const uint64_t words[4] = {};
  const BgemmLhs a{words, offsets, offsets, 4};
  const BgemmOutput ok{256, nullptr, nullptr, nullptr, nullptr, 0.0f, 0.0f, nullptr, 16, 8};
  expect(bgemm_contract_violation(8, a, ok, kernel) == nullptr, "contract: valid call", "", 0, 0, 0);
  BgemmOutput o = ok;
  o.k_bits = 257;  // more bits than 4 words hold
  expect(bgemm_contract_violation(8, a, o, kernel) != nullptr, "contract: k_bits > 64 k_words", "", 0, 0, 0);
  const std::vector<uint32_t> many(size_t(1) << 18, 0);
  const BgemmLhs big{words, offsets, many.data(), many.size()};  // 2^24 bits
  o = ok;
  o.k_bits = int32_t(1) << 24;
  expect(bgemm_contract_violation(8, big, o, kernel) != nullptr, "contract: k_bits = 2^24", "", 0, 0, 0);
  o.k_bits = kBgemmMaxKBits;
  expect(bgemm_contract_violation(8, big, o, kernel) == nullptr, "contract: k_bits = 2^24 - 1", "", 0, 0, 0);
  o = ok;
  o.col = 4;  // not on a panel boundary
  expect(bgemm_contract_violation(8, a, o, kernel) != nullptr, "contract: col % nr", "", 0, 0, 0);
  o = ok;
  o.ldo = 15;
  expect(bgemm_contract_violation(8, a, o, kernel) != nullptr, "contract: ldo", "", 0, 0, 0);
}

}  // namespace

int main() {
  test_configs();
  test_cpu_features();
  test_bgemm_contract();
  int kernels = 0;
  // One run per kernel of each job's list whose ISA this CPU has; the same seed for each, so
  // every kernel sees the same cases.
  const std::vector<std::string> known = all_isas();
  const auto run = [&](const char* isa, const char* name, auto&& test) {
    // A list line whose ISA is not in the one list would never be dispatched or tested.
    expect(std::find(known.begin(), known.end(), isa) != known.end(), "ISA of a list line is known", name, 0, 0, 0);
    if (!cpu_runs(isa)) {
      std::printf("%s: skipped (this CPU lacks %s)\n", name, isa);
      return;
    }
    std::mt19937_64 rng(42);
    const int before = failures;
    test(rng);
    ++kernels;
    std::printf("%s: %s\n", name, failures == before ? "ok" : "FAILED");
  };
#define IRN_BGEMM_UKERNEL(isa, name, nr, lane_bits) \
  run(#isa, #name, [](std::mt19937_64& rng) { test_bgemm(BgemmKernel{nr, lane_bits, name}, #name, rng); });
#include "kernels/bgemm.inc"
#undef IRN_BGEMM_UKERNEL
#define IRN_BITPACK_UKERNEL(isa, name) run(#isa, #name, [](std::mt19937_64& rng) { test_bitpack(name, #name, rng); });
#include "kernels/bitpack.inc"
#undef IRN_BITPACK_UKERNEL
#define IRN_MAXPOOL_UKERNEL(isa, name) run(#isa, #name, [](std::mt19937_64& rng) { test_maxpool(name, #name, rng); });
#include "kernels/maxpool.inc"
#undef IRN_MAXPOOL_UKERNEL
#define IRN_BITPOOL_UKERNEL(isa, name) run(#isa, #name, [](std::mt19937_64& rng) { test_bitpool(name, #name, rng); });
#include "kernels/bitpool.inc"
#undef IRN_BITPOOL_UKERNEL
#define IRN_SGEMM_UKERNEL(isa, mr, nr, fn) \
  run(#isa, #fn, [](std::mt19937_64& rng) { test_sgemm(#isa, SgemmKernel{mr, nr, fn}, rng); });
#include "kernels/sgemm.inc"
#undef IRN_SGEMM_UKERNEL
  std::printf("%d kernels tested, %d failures\n", kernels, failures);
  return failures ? 1 : 0;
}
