// The set of micro-kernels the engine runs with, chosen once per ISA.
#pragma once
#include <string>
#include <vector>

#include "kernels/bgemm.h"
#include "kernels/bitpack.h"
#include "kernels/bitpool.h"
#include "kernels/maxpool.h"
#include "kernels/sgemm.h"

namespace irnet {

// One kernel per job. config.cpp fills each field by name from the job's list (<job>.inc), so a
// new job is a new field here and one line there.
struct KernelConfig {
  const char* isa = nullptr;  // one of all_isas()
  BitpackFn bitpack = nullptr;
  BgemmKernel bgemm{};
  SgemmKernel sgemm{};
  MaxPoolFn maxpool = nullptr;
  BitPoolFn bitpool = nullptr;
};

// Every ISA the engine knows, best first, whether or not this build or CPU has it: the one list
// (IRNET_ISA, isa= and the CLI's --isa accept these names).
std::vector<std::string> all_isas();

// ISAs this build contains and this CPU can run, best first; "scalar" is always last.
std::vector<std::string> available_isas();

// Whether this CPU has the features `isa`'s kernels need (false for an unknown name), built or
// not: the kernel tests and benchmarks run a <job>.inc line only where this holds.
bool cpu_runs(const std::string& isa);

// The config for `isa`; an empty name picks IRNET_ISA if set, else the best available.
// Raises irnet::Error for an ISA that is unknown, not built, or not supported by this CPU.
const KernelConfig& kernel_config(const std::string& isa = "");

}  // namespace irnet
