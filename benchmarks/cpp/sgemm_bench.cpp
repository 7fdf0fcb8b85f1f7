// SGEMM micro-kernel benchmark: every kernel of kernels/sgemm.inc this CPU runs, through the
// shared panel loop, on the float-conv shapes of ResNet-18 (one 64-pixel block of GEMM rows,
// k = kh x kw x Cin in kh segments, one task's output channels), operands hot in cache.
// Prints the best of 200 calls in thread CPU time, and G MAC/s. Built with
// -DIRNET_BUILD_BENCHMARKS=ON; run build/.../sgemm_bench.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "kernels/config.h"

using namespace irnet;

namespace {

double thread_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

struct Shape {
  const char* name;
  size_t m, segs, seg_len, n;
};

// name, GEMM rows, kernel rows (segments), taps x Cin per segment, output channels
const Shape kShapes[] = {
    {"stem 7x7 Cin 3", 64, 7, 21, 64},     {"3x3 Cin 64", 64, 3, 192, 64},
    {"3x3 Cin 128", 64, 3, 384, 128},      {"3x3 Cin 512 (7x7 map)", 49, 3, 1536, 128},
    {"1x1 Cin 256", 64, 1, 256, 128},      {"3x3 Cin 16 (CIFAR)", 64, 3, 48, 16},
};

void run(const char* isa, const SgemmKernel& kernel) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (const Shape& s : kShapes) {
    const size_t k = s.segs * s.seg_len;
    std::vector<float> x(s.m * k), b(k * s.n), mul(s.n, 1.0f), bias(s.n, 0.0f), out(s.m * s.n);
    for (auto& v : x) v = u(rng);
    for (auto& v : b) v = u(rng);
    std::vector<const float*> rows(s.m);
    for (size_t i = 0; i < s.m; ++i) rows[i] = x.data() + i * k;
    std::vector<size_t> offsets(s.segs);
    for (size_t q = 0; q < s.segs; ++q) offsets[q] = q * s.seg_len;
    const SgemmPackedB packed = sgemm_pack_b(k, s.n, kernel.nr, b.data());
    const SgemmLhs a{rows.data(), offsets.data(), s.segs, s.seg_len};
    const SgemmOutput o{mul.data(), bias.data(), nullptr, -1e30f, 1e30f, out.data(), s.n};
    double best = 1e30;
    for (int r = 0; r < 200; ++r) {
      const double t0 = thread_seconds();
      kernel.run(s.m, s.n, a, packed.data(), o);
      best = std::min(best, thread_seconds() - t0);
    }
    std::printf("%-8s %-24s m=%-3zu k=%-5zu n=%-4zu %9.1f us %6.1f G MAC/s\n", isa, s.name, s.m, k, s.n,
                best * 1e6, double(s.m * s.n * k) / best * 1e-9);
  }
}

}  // namespace

int main() {
  const std::vector<std::string> isas = available_isas();
  const auto has = [&](const char* isa) { return std::find(isas.begin(), isas.end(), isa) != isas.end(); };
#define IRN_SGEMM_UKERNEL(isa, mr, nr, fn) \
  if (has(#isa)) run(#isa " " #mr "x" #nr, SgemmKernel{mr, nr, fn});
#include "kernels/sgemm.inc"
#undef IRN_SGEMM_UKERNEL
  return 0;
}
