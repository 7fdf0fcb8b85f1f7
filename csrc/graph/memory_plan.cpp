#include "graph/memory_plan.h"

#include <algorithm>

#include "aligned.h"

namespace irnet {

namespace {

// Bytes per sample of a tensor in the type it is stored as.
int64_t bytes_per_sample(const PlanTensor& t) {
  if (t.sign_bits)
    return (t.shape.h + 2 * t.border.h) * (t.shape.w + 2 * t.border.w) *
           int64_t(words_for(size_t(t.shape.c)) * sizeof(uint64_t));
  return t.shape.numel() * int64_t(sizeof(float));
}

}  // namespace

MemoryPlan plan_memory(const StepGraph& graph) {
  const std::vector<Step>& steps = graph.steps;
  const size_t n_tensors = graph.tensors.size();
  // Live range of each tensor: [step that writes it, last step that reads it]; the input is
  // written at step -1. The output stays live to the end.
  const int n_steps = int(steps.size());
  std::vector<int> first(n_tensors, -2), last(n_tensors, -2);
  first[0] = -1;
  last[0] = -1;
  for (int s = 0; s < n_steps; ++s) {
    const Step& step = steps[size_t(s)];
    for (int t : step.in) last[size_t(t)] = s;
    for (int t : {step.out, step.out_bits}) {
      if (t < 0) continue;
      first[size_t(t)] = s;
      last[size_t(t)] = std::max(last[size_t(t)], s);
    }
  }
  last[size_t(graph.output)] = n_steps;
  MemoryPlan plan;
  plan.offset.assign(n_tensors, -1);
  plan.debug_offset.assign(n_tensors, -1);
  struct Placed { int64_t begin, end; int first, last; };
  std::vector<Placed> placed;
  for (size_t t = 0; t < n_tensors; ++t) {
    if (first[t] == -2) continue;  // folded away: never written
    // Whole cache lines, so every tensor of every sample starts on one (the arena is aligned).
    const int64_t size = round_to_cache_lines<unsigned char>(bytes_per_sample(graph.tensors[t]));
    // First fit: the lowest offset that overlaps no tensor alive at the same time.
    std::vector<Placed> live;
    for (const Placed& p : placed)
      if (!(p.last < first[t] || last[t] < p.first)) live.push_back(p);
    std::sort(live.begin(), live.end(), [](const Placed& a, const Placed& b) { return a.begin < b.begin; });
    int64_t offset = 0;
    for (const Placed& p : live) {
      if (offset + size <= p.begin) break;
      offset = std::max(offset, p.end);
    }
    plan.offset[t] = offset;
    plan.debug_offset[t] = plan.debug_bytes_per_sample;
    plan.debug_bytes_per_sample += size;
    placed.push_back({offset, offset + size, first[t], last[t]});
    plan.arena_bytes_per_sample = std::max(plan.arena_bytes_per_sample, offset + size);
  }
  return plan;
}

}  // namespace irnet
