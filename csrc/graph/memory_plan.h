// Buffers for a rewritten StepGraph: one arena per run, each tensor at a fixed offset per
// sample, tensors whose live ranges do not overlap sharing memory.
#pragma once
#include <cstdint>
#include <vector>

#include "graph/step_graph.h"

namespace irnet {

struct MemoryPlan {
  // Per tensor, in bytes per sample (a batch of n puts the tensor at offset * n); -1 for a
  // tensor no step writes (folded away).
  std::vector<int64_t> offset;
  std::vector<int64_t> debug_offset;  // when every tensor is kept (debug runs)
  int64_t arena_bytes_per_sample = 0, debug_bytes_per_sample = 0;
  bool written(int t) const { return offset[size_t(t)] >= 0; }
};

MemoryPlan plan_memory(const StepGraph& graph);

}  // namespace irnet
