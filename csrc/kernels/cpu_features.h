// What this CPU can run, detected once.
#pragma once
#include <cstdint>

namespace irnet {

struct CpuFeatures {
  bool avx2 = false;    // AVX2 + FMA, OS saves ymm state: everything the *-avx2.cpp files use
  bool avx512 = false;  // AVX-512 F/BW/VL/DQ/VPOPCNTDQ + FMA, OS saves zmm state: everything
                        // the *-avx512.cpp files are compiled with (CMakeLists.txt)
  bool neon = false;    // aarch64 always has Advanced SIMD
};

const CpuFeatures& cpu_features();

// The x86 registers detection reads: CPUID leaf 1 ecx, leaf 7 (subleaf 0) ebx and ecx, and
// XCR0's low half (XGETBV; only read when leaf 1 reports OSXSAVE). Kept apart from the CPUID
// calls so tests can decode made-up CPUs.
struct X86CpuidRegs {
  uint32_t leaf1_ecx = 0;
  bool has_leaf7 = false;
  uint32_t leaf7_ebx = 0, leaf7_ecx = 0;
  uint32_t xcr0 = 0;
};
CpuFeatures decode_x86_features(const X86CpuidRegs& r);

}  // namespace irnet
