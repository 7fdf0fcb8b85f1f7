// The set of micro-kernels the engine runs with, chosen once per ISA.
#pragma once
#include <string>
#include <vector>

#include "kernels/bgemm.h"
#include "kernels/bitpack.h"
#include "kernels/maxpool.h"
#include "kernels/sgemm.h"

namespace irnet {

struct KernelConfig {
  const char* isa;  // "scalar", "avx2", "avx512", "neon"
  BitpackFn bitpack;
  BgemmKernel bgemm;
  SgemmKernel sgemm;
  MaxPoolFn maxpool;
};

// ISAs this build contains and this CPU can run, best first; "scalar" is always last.
std::vector<std::string> available_isas();

// The config for `isa`; an empty name picks IRNET_ISA if set, else the best available.
// Raises irnet::Error for an ISA that is unknown, not built, or not supported by this CPU.
const KernelConfig& kernel_config(const std::string& isa = "");

}  // namespace irnet
