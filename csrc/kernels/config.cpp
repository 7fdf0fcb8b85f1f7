#include "kernels/config.h"

#include <cstdlib>
#include <cstring>

#include "common.h"
#include "kernels/cpu_features.h"

namespace irnet {

namespace {

// Every ISA the engine knows, best first: the one list. An ISA is built when some <job>.inc
// lists a kernel for it (the lists compile only the files this target has).
struct Isa {
  const char* name;
  bool (*cpu_runs)();
};
const Isa kIsas[] = {
    {"avx512", [] { return cpu_features().avx512; }},
    {"avx2", [] { return cpu_features().avx2; }},
    {"neon", [] { return cpu_features().neon; }},
    {"scalar", [] { return true; }},
};

// The kernels of `isa`, each field taken by name from its job's list (the first line for the
// ISA). Returns false when no list names the ISA (not built); a built ISA missing a job is a
// build error the kernel tests report (kernel_config refuses it).
bool fill_config(const char* isa, KernelConfig& c) {
  bool any = false;
  const auto mine = [&](const char* line_isa, bool taken) {
    const bool match = !taken && std::strcmp(line_isa, isa) == 0;
    any = any || std::strcmp(line_isa, isa) == 0;
    return match;
  };
  c.isa = isa;
#define IRN_BITPACK_UKERNEL(line_isa, name) \
  if (mine(#line_isa, c.bitpack != nullptr)) c.bitpack = name;
#include "kernels/bitpack.inc"
#undef IRN_BITPACK_UKERNEL
#define IRN_BGEMM_UKERNEL(line_isa, name, nr_, lane_bits_) \
  if (mine(#line_isa, c.bgemm.run != nullptr)) c.bgemm = BgemmKernel{nr_, lane_bits_, name};
#include "kernels/bgemm.inc"
#undef IRN_BGEMM_UKERNEL
#define IRN_SGEMM_UKERNEL(line_isa, mr_, nr_, name) \
  if (mine(#line_isa, c.sgemm.ukernel != nullptr)) c.sgemm = kSgemm_##line_isa;
#include "kernels/sgemm.inc"
#undef IRN_SGEMM_UKERNEL
#define IRN_MAXPOOL_UKERNEL(line_isa, name) \
  if (mine(#line_isa, c.maxpool != nullptr)) c.maxpool = name;
#include "kernels/maxpool.inc"
#undef IRN_MAXPOOL_UKERNEL
#define IRN_BITPOOL_UKERNEL(line_isa, name) \
  if (mine(#line_isa, c.bitpool != nullptr)) c.bitpool = name;
#include "kernels/bitpool.inc"
#undef IRN_BITPOOL_UKERNEL
  return any;
}

// A job with no kernel for a built ISA, or null.
const char* missing_job(const KernelConfig& c) {
  if (!c.bitpack) return "bitpack";
  if (!c.bgemm.run) return "bgemm";
  if (!c.sgemm.ukernel) return "sgemm";
  if (!c.maxpool) return "maxpool";
  if (!c.bitpool) return "bitpool";
  return nullptr;
}

struct Built {
  const Isa* isa;
  KernelConfig config;
};

// The built ISAs' configs, made once, in kIsas order.
const std::vector<Built>& built() {
  static const std::vector<Built> configs = [] {
    std::vector<Built> out;
    for (const Isa& isa : kIsas) {
      KernelConfig c;
      if (fill_config(isa.name, c)) out.push_back({&isa, c});
    }
    return out;
  }();
  return configs;
}

std::string isa_names() {
  std::string s;
  for (const Isa& isa : kIsas) s += std::string(s.empty() ? "" : ", ") + isa.name;
  return s;
}

}  // namespace

std::vector<std::string> all_isas() {
  std::vector<std::string> out;
  for (const Isa& isa : kIsas) out.push_back(isa.name);
  return out;
}

std::vector<std::string> available_isas() {
  std::vector<std::string> out;
  for (const Built& b : built())
    if (b.isa->cpu_runs()) out.push_back(b.isa->name);
  return out;
}

bool cpu_runs(const std::string& name) {
  for (const Isa& isa : kIsas)
    if (name == isa.name) return isa.cpu_runs();
  return false;
}

const KernelConfig& kernel_config(const std::string& requested) {
  std::string isa = requested;
  if (isa.empty()) {
    const char* env = std::getenv("IRNET_ISA");
    if (env && *env) isa = env;
  }
  const Built* pick = nullptr;
  if (isa.empty()) {
    for (const Built& b : built())
      if (!pick && b.isa->cpu_runs()) pick = &b;
  } else {
    bool known = false;
    for (const Isa& k : kIsas) known = known || isa == k.name;
    check(known, "unknown ISA '", isa, "' (IRNET_ISA or isa=): choose one of ", isa_names());
    for (const Built& b : built())
      if (isa == b.isa->name) pick = &b;
    check(pick != nullptr, "ISA '", isa, "' is not built into this engine");
    check(pick->isa->cpu_runs(), "ISA '", isa, "' is not supported by this CPU");
  }
  const char* missing = missing_job(pick->config);
  check(missing == nullptr, "ISA '", pick->isa->name, "' is built without a ", missing ? missing : "",
        " kernel (add it to kernels/", missing ? missing : "", ".inc)");
  return pick->config;
}

}  // namespace irnet
