// What this CPU can run, detected once.
#pragma once

namespace irnet {

struct CpuFeatures {
  bool avx2 = false;             // AVX2 + FMA, OS saves ymm state
  bool avx512_vpopcntdq = false;  // AVX-512 F/BW + VPOPCNTDQ, OS saves zmm state
  bool neon = false;             // aarch64 always has Advanced SIMD
};

const CpuFeatures& cpu_features();

}  // namespace irnet
