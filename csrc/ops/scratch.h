// Per-thread scratch memory for ops: grows to the largest request and is reused across runs,
// so steady-state inference allocates (and page-faults) nothing.
#pragma once
#include <cstddef>
#include <vector>

#include "aligned.h"

namespace irnet {

template <typename T>
T* thread_scratch(size_t count, int slot = 0) {
  thread_local AlignedVector<T> buffers[3];
  AlignedVector<T>& b = buffers[slot];
  if (b.size() < count) b.resize(count);
  return b.data();
}

}  // namespace irnet
