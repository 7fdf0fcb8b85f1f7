// Kernel-only microbenchmarks, XNNPACK style: every kernel of each job's list (<job>.inc) that
// this CPU runs, on shapes from the networks, timed side by side. SGEMM, which has no list yet,
// runs through its public header (sgemm.h) with each available config's kernel.
//
// Build: cmake -S . -B build/bench -G Ninja -DIRNET_BUILD_PYTHON=OFF -DIRNET_BUILD_BENCHMARKS=ON
//        cmake --build build/bench --target bench_kernels && build/bench/bench_kernels [ROUNDS]
//
// Method: for each shape, ROUNDS rounds (default 15); in each round every kernel runs once, in
// turn (interleaved, so a noisy neighbour slows all of them alike), as many calls as took about
// 2 ms of CPU time when calibrated, and its thread CPU time per call is recorded (time spent
// preempted on a shared machine is not counted; cache pollution by neighbours still is). The
// table gives each kernel's median and best over the rounds and the ratio of the scalar
// kernel's median to its own, from the same rounds. One thread.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/config.h"

using namespace irnet;

namespace {

struct Candidate {
  std::string name;
  std::function<void()> call;
};

// This thread's CPU time: on a shared machine, time the thread spends preempted is not counted.
double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// How many calls take about `budget` seconds of CPU time (doubling; clock reads stay outside
// the timed calls, so fast kernels are not timed with the clock's overhead).
size_t calls_for(const std::function<void()>& call, double budget) {
  for (size_t calls = 1;; calls *= 2) {
    const double t0 = cpu_seconds();
    for (size_t i = 0; i < calls; ++i) call();
    if (cpu_seconds() - t0 >= budget || calls >= (size_t(1) << 30)) return calls;
  }
}

double seconds_per_call(const std::function<void()>& call, size_t calls) {
  const double t0 = cpu_seconds();
  for (size_t i = 0; i < calls; ++i) call();
  return (cpu_seconds() - t0) / double(calls);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Times the candidates interleaved; `ops` per call (for GOPS: 2 x MACs, or elements touched).
void bench(const char* job, const std::string& shape, double ops, const char* ops_unit,
           const std::vector<Candidate>& cands, int rounds) {
  std::vector<std::vector<double>> times(cands.size());
  std::vector<size_t> calls;
  for (const Candidate& c : cands) calls.push_back(calls_for(c.call, 2e-3));  // also warms caches
  for (int r = 0; r < rounds; ++r)
    for (size_t i = 0; i < cands.size(); ++i) times[i].push_back(seconds_per_call(cands[i].call, calls[i]));
  double scalar = 0;
  for (size_t i = 0; i < cands.size(); ++i)
    if (cands[i].name.find("scalar") != std::string::npos) scalar = median(times[i]);
  for (size_t i = 0; i < cands.size(); ++i) {
    const double t = median(times[i]), best = *std::min_element(times[i].begin(), times[i].end());
    std::printf("| %s | %s | %s | %.2f | %.2f | %.2f %s | %.1fx |\n", job, shape.c_str(), cands[i].name.c_str(),
                t * 1e6, best * 1e6, ops / t / 1e9, ops_unit, scalar / t);
  }
}

std::mt19937_64 rng(1);

void bench_bgemm(int rounds) {
  // One 64-pixel block of ResNet-18 layer 1 (56x56, 64 -> 64, 3x3: 9 words) and layer 3
  // (14x14, 256 -> 256), all 49 pixels of layer 4 (7x7, 512 -> 512); ResNet-20 layer 1 (32x32,
  // 16 -> 16, taps back to back: 3 words per pixel).
  const size_t shapes[][3] = {{64, 64, 9}, {64, 256, 36}, {49, 512, 72}, {64, 16, 3}};  // m, n, k_words
  for (const auto& s : shapes) {
    const size_t m = s[0], n = s[1], k = s[2];
    std::vector<uint64_t> a(m * k), b(n * k);
    for (auto& w : a) w = rng();
    for (auto& w : b) w = rng();
    std::vector<uint32_t> rows(m), ks(k);
    for (size_t i = 0; i < m; ++i) rows[i] = uint32_t(i * k);
    for (size_t i = 0; i < k; ++i) ks[i] = uint32_t(i);
    std::vector<float> mul(n, 0.5f), bias(n, 0.25f), out(m * n);
    const BgemmLhs lhs{a.data(), rows.data(), ks.data(), k};
    const BgemmOutput o{int32_t(64 * k), mul.data(), bias.data(), nullptr, nullptr, -1.0f, 1.0f, out.data(), n};
    std::vector<Candidate> cands;
    std::vector<std::vector<uint64_t>> packs;
    packs.reserve(8);
#define IRN_BGEMM_UKERNEL(isa, name, nr, lane_bits)                                     \
  if (cpu_runs(#isa)) {                                                                 \
    const BgemmKernel kernel{nr, lane_bits, name};                                      \
    packs.push_back(bgemm_pack_b(n, k, kernel, b.data()));                              \
    const uint64_t* packed = packs.back().data();                                       \
    cands.push_back({#name, [=, &lhs, &o] { kernel.run(m, n, lhs, packed, o); }});      \
  }
#include "kernels/bgemm.inc"
#undef IRN_BGEMM_UKERNEL
    bench("bgemm", std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k * 64) + " bits",
          2.0 * double(m * n * k * 64), "G bit-op/s", cands, rounds);
  }
}

void bench_bitpack(int rounds) {
  const size_t shapes[][2] = {{56 * 56, 64}, {14 * 14, 256}, {32 * 32, 16}};  // rows, channels
  for (const auto& s : shapes) {
    const size_t rows = s[0], channels = s[1];
    std::normal_distribution<float> normal;
    std::vector<float> x(rows * channels);
    for (auto& v : x) v = normal(rng);
    std::vector<uint64_t> out(rows * words_for(channels));
    std::vector<Candidate> cands;
#define IRN_BITPACK_UKERNEL(isa, name) \
  if (cpu_runs(#isa)) cands.push_back({#name, [&] { name(x.data(), rows, channels, out.data()); }});
#include "kernels/bitpack.inc"
#undef IRN_BITPACK_UKERNEL
    bench("bitpack", std::to_string(rows) + " px x " + std::to_string(channels) + " ch", double(rows * channels),
          "G float/s", cands, rounds);
  }
}

// A window's tap pointers for every output pixel of a k x k, stride s pool (no padding).
template <class T>
std::vector<const T*> window_taps(const std::vector<T>& map, size_t h, size_t w, size_t lanes, size_t k, size_t s,
                                  size_t& pixels) {
  std::vector<const T*> taps;
  const size_t oh = (h - k) / s + 1, ow = (w - k) / s + 1;
  pixels = oh * ow;
  for (size_t oy = 0; oy < oh; ++oy)
    for (size_t ox = 0; ox < ow; ++ox)
      for (size_t y = 0; y < k; ++y)
        for (size_t x = 0; x < k; ++x) taps.push_back(map.data() + ((oy * s + y) * w + ox * s + x) * lanes);
  return taps;
}

void bench_maxpool(int rounds) {
  // ResNet-18's 3x3 / 2 pool after the stem (here 111x111 -> 55x55, 64 channels); VGG-Small's
  // 2x2 pool on floats (32x32 -> 16x16, 128 channels).
  const size_t shapes[][4] = {{111, 64, 3, 2}, {32, 128, 2, 2}};  // size, channels, k, stride
  for (const auto& s : shapes) {
    const size_t size = s[0], c = s[1], k = s[2], stride = s[3];
    std::normal_distribution<float> normal;
    std::vector<float> map(size * size * c);
    for (auto& v : map) v = normal(rng);
    size_t pixels = 0;
    const std::vector<const float*> taps = window_taps(map, size, size, c, k, stride, pixels);
    std::vector<float> out(pixels * c);
    std::vector<Candidate> cands;
#define IRN_MAXPOOL_UKERNEL(isa, name)                                                                   \
  if (cpu_runs(#isa))                                                                                    \
    cands.push_back({#name, [&] {                                                                        \
                       for (size_t p = 0; p < pixels; ++p) name(taps.data() + p * k * k, k * k, c, out.data() + p * c); \
                     }});
#include "kernels/maxpool.inc"
#undef IRN_MAXPOOL_UKERNEL
    bench("maxpool", std::to_string(size) + "^2 x " + std::to_string(c) + " ch, " + std::to_string(k) + "x" +
                         std::to_string(k) + "/" + std::to_string(stride),
          double(pixels * k * k * c), "G tap-ch/s", cands, rounds);
  }
}

void bench_bitpool(int rounds) {
  // VGG-Small's 2x2 pools between binary convs, on sign bits: 128 channels (2 words) at 32x32,
  // 512 channels (8 words) at 8x8.
  const size_t shapes[][2] = {{32, 128}, {8, 512}};  // size, channels
  for (const auto& s : shapes) {
    const size_t size = s[0], words = words_for(s[1]);
    std::vector<uint64_t> map(size * size * words);
    for (auto& w : map) w = rng();
    size_t pixels = 0;
    const std::vector<const uint64_t*> taps = window_taps(map, size, size, words, 2, 2, pixels);
    std::vector<uint64_t> out(pixels * words);
    std::vector<Candidate> cands;
#define IRN_BITPOOL_UKERNEL(isa, name)                                                                    \
  if (cpu_runs(#isa))                                                                                     \
    cands.push_back({#name, [&] {                                                                         \
                       for (size_t p = 0; p < pixels; ++p) name(taps.data() + p * 4, 4, words, out.data() + p * words); \
                     }});
#include "kernels/bitpool.inc"
#undef IRN_BITPOOL_UKERNEL
    bench("bitpool", std::to_string(size) + "^2 x " + std::to_string(s[1]) + " ch, 2x2/2",
          double(pixels * 4 * words * 64), "G tap-ch/s", cands, rounds);
  }
}

void bench_sgemm(int rounds) {
  // ResNet-18's 7x7 stem, one output row block: 112 pixels x 64 channels x 147 (7x7x3) taps.
  const size_t m = 112, n = 64, k = 147;
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> a(m * k), b(k * n), mul(n, 1.0f), bias(n, 0.0f), out(m * n);
  for (auto& v : a) v = u(rng);
  for (auto& v : b) v = u(rng);
  std::vector<const float*> rows(m);
  for (size_t i = 0; i < m; ++i) rows[i] = a.data() + i * k;
  const size_t seg = 0;
  const SgemmLhs lhs{rows.data(), &seg, 1, k};
  const SgemmOutput o{mul.data(), bias.data(), nullptr, -INFINITY, INFINITY, out.data(), n};
  std::vector<Candidate> cands;
  std::vector<SgemmPackedB> packs;
  packs.reserve(8);
  // Every line of sgemm.inc whose ISA this CPU runs (its whole panel loop, SgemmKernel::run).
#define IRN_SGEMM_UKERNEL(isa, mr_, nr_, fn)                                            \
  if (cpu_runs(#isa)) {                                                                 \
    const SgemmKernel kernel{mr_, nr_, fn};                                             \
    packs.push_back(sgemm_pack_b(k, n, kernel.nr, b.data()));                           \
    const float* packed = packs.back().data();                                          \
    cands.push_back({#fn, [=, &lhs, &o] { kernel.run(m, n, lhs, packed, o); }});        \
  }
#include "kernels/sgemm.inc"
#undef IRN_SGEMM_UKERNEL
  bench("sgemm", "112x64x147", 2.0 * double(m * n * k), "GFLOP/s", cands, rounds);
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 15;
  std::printf("| job | shape | kernel | median us/call | best us/call | throughput (median) | scalar / kernel (medians) |\n"
              "|---|---|---|---|---|---|---|\n");
  bench_bgemm(rounds);
  bench_bitpack(rounds);
  bench_maxpool(rounds);
  bench_bitpool(rounds);
  bench_sgemm(rounds);
  return 0;
}
