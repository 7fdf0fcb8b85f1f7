// Asserting a kernel's contract (stated in its <job>.h) where an op calls it. A broken contract
// is a bug in the engine, not bad input (ops refuse bad input at load with irnet::Error), and
// it may be found inside an OpenMP loop, where nothing can be thrown: so it aborts with the
// place and the clause. Per-call checks run in builds with IRNET_CHECK_CONTRACTS (the sanitizer
// build CI runs, Debug builds); the one a file can reach, bgemm's k_bits, is checked at load.
#pragma once
#include <cstdio>
#include <cstdlib>

#ifdef IRNET_CHECK_CONTRACTS
#define IRN_ASSERT_CONTRACT(kernel, violation)                                                   \
  do {                                                                                           \
    if (const char* irn_violation_ = (violation)) {                                              \
      std::fprintf(stderr, "%s:%d: %s contract broken: %s\n", __FILE__, __LINE__, kernel,        \
                   irn_violation_);                                                              \
      std::abort();                                                                              \
    }                                                                                            \
  } while (0)
#else
#define IRN_ASSERT_CONTRACT(kernel, violation) ((void)0)
#endif
