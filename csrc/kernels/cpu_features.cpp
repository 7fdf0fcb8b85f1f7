#include "kernels/cpu_features.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

namespace irnet {

CpuFeatures decode_x86_features(const X86CpuidRegs& r) {
  CpuFeatures f;
  const auto bit = [](uint32_t reg, int i) { return ((reg >> i) & 1u) != 0; };
  const bool osxsave = bit(r.leaf1_ecx, 27), fma = bit(r.leaf1_ecx, 12);
  if (!osxsave || !r.has_leaf7) return f;
  // XCR0: the OS must save the vector registers (SSE|AVX = 0x6; + opmask, ZMM_Hi256 and
  // Hi16_ZMM = 0xe6), or using them corrupts state across context switches.
  const bool ymm_saved = (r.xcr0 & 0x6) == 0x6;
  const bool zmm_saved = (r.xcr0 & 0xe6) == 0xe6;
  const bool avx2 = bit(r.leaf7_ebx, 5);
  // Every extension the AVX-512 files are compiled with: a CPU lacking any one of them could
  // fault on an instruction the compiler chose (e.g. VL's 256-bit forms of EVEX instructions).
  const bool avx512f = bit(r.leaf7_ebx, 16), avx512dq = bit(r.leaf7_ebx, 17);
  const bool avx512bw = bit(r.leaf7_ebx, 30), avx512vl = bit(r.leaf7_ebx, 31);
  const bool vpopcntdq = bit(r.leaf7_ecx, 14);
  f.avx2 = avx2 && fma && ymm_saved;
  f.avx512 = avx512f && avx512bw && avx512vl && avx512dq && vpopcntdq && fma && zmm_saved;
  return f;
}

namespace {

CpuFeatures detect() {
#if defined(__x86_64__) || defined(_M_X64)
  X86CpuidRegs r;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return {};
  r.leaf1_ecx = c;
  if (c & (1u << 27)) {  // OSXSAVE: XGETBV is available
    unsigned xcr0_lo, xcr0_hi;
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    r.xcr0 = xcr0_lo;
  }
  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    r.has_leaf7 = true;
    r.leaf7_ebx = b;
    r.leaf7_ecx = c;
  }
  return decode_x86_features(r);
#else
  CpuFeatures f;
#if defined(__aarch64__)
  f.neon = true;
#endif
  return f;
#endif
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

}  // namespace irnet
