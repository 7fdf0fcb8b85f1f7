#include "kernels/config.h"

#include <cstdlib>

#include "common.h"
#include "kernels/cpu_features.h"

namespace irnet {

namespace {

struct Entry {
  KernelConfig config;
  bool (*supported)();
};

// Best first. An ISA enters this list only in builds that compile its kernels.
const Entry kEntries[] = {
#ifdef IRNET_HAVE_AVX512
    {{"avx512", irn_bitpack_ukernel__avx512, {32, 32, irn_bgemm_f32_ukernel_4x32__avx512},
      kSgemm_avx512,
      irn_maxpool_ukernel__avx512},
     [] { return cpu_features().avx512_vpopcntdq; }},
#endif
#ifdef IRNET_HAVE_AVX2
    {{"avx2", irn_bitpack_ukernel__avx2, {8, 64, irn_bgemm_f32_ukernel_4x8__avx2},
      kSgemm_avx2,
      irn_maxpool_ukernel__avx2},
     [] { return cpu_features().avx2; }},
#endif
#ifdef IRNET_HAVE_NEON
    {{"neon", irn_bitpack_ukernel__neon, {8, 64, irn_bgemm_f32_ukernel_2x8__neon},
      kSgemm_neon,
      irn_maxpool_ukernel__neon},
     [] { return cpu_features().neon; }},
#endif
    {{"scalar", irn_bitpack_ukernel__scalar, {8, 64, irn_bgemm_f32_ukernel_1x8__scalar},
      kSgemm_scalar,
      irn_maxpool_ukernel__scalar},
     [] { return true; }},
};

const char* const kKnownIsas[] = {"avx512", "avx2", "neon", "scalar"};

}  // namespace

std::vector<std::string> available_isas() {
  std::vector<std::string> out;
  for (const Entry& e : kEntries)
    if (e.supported()) out.push_back(e.config.isa);
  return out;
}

const KernelConfig& kernel_config(const std::string& requested) {
  std::string isa = requested;
  if (isa.empty()) {
    const char* env = std::getenv("IRNET_ISA");
    if (env && *env) isa = env;
  }
  if (isa.empty()) {
    for (const Entry& e : kEntries)
      if (e.supported()) return e.config;
  }
  bool known = false;
  for (const char* k : kKnownIsas) known = known || isa == k;
  check(known, "unknown ISA '", isa, "' (IRNET_ISA or isa=): choose one of avx512, avx2, neon, scalar");
  for (const Entry& e : kEntries) {
    if (isa != e.config.isa) continue;
    check(e.supported(), "ISA '", isa, "' is not supported by this CPU");
    return e.config;
  }
  fail("ISA '", isa, "' is not built into this engine or not supported by this CPU");
}

}  // namespace irnet
