// conv -> max_pool -> batch_norm -> hardtanh (VGG-Small), after fuse_into_producers: the
// batch_norm and the clamp move into the conv, ahead of the pool. Exact: max commutes with any
// non-decreasing map, and x * s + t rounded is non-decreasing for s > 0 (a clamp always is);
// with finite s and t, and a fold that stays finite (fold_affine checks), it makes no NaN from
// a number, so NaN propagation is unchanged too. The conv's own output then holds values
// PyTorch never computes: debug runs leave it out.
#include <algorithm>
#include <cmath>

#include "graph/rewrite.h"

namespace irnet {

void fuse_through_max_pools(StepGraph& graph) {
  std::vector<Step>& steps = graph.steps;
  for (size_t i = 0; i < steps.size(); ++i) {
    const int t = steps[i].out;
    int q = graph.only_consumer(t);
    if (q < 0 || !steps[size_t(q)].op->commutes_with_increasing_maps()) continue;
    bool fused = false;
    for (;;) {
      const int pooled = steps[size_t(q)].out;
      const int j = graph.only_consumer(pooled);
      if (j < 0) break;
      Step& next = steps[size_t(j)];
      std::vector<float> scale, shift;
      float lo, hi;
      bool ok = false;
      if (next.op->as_affine(&scale, &shift)) {
        ok = std::all_of(scale.begin(), scale.end(), [](float v) { return v > 0 && std::isfinite(v); }) &&
             std::all_of(shift.begin(), shift.end(), [](float v) { return std::isfinite(v); }) &&
             steps[i].op->fold_affine(scale, shift);
      } else if (next.op->as_clamp(&lo, &hi)) {
        ok = steps[i].op->fuse_clamp(lo, hi);
      }
      if (!ok) break;
      steps[i].fused.push_back(next.op->desc().name + " (" + next.op->desc().type + ", moved before pooling)");
      steps[size_t(q)].out = next.out;
      steps.erase(steps.begin() + j);
      if (j < q) --q;
      fused = true;
    }
    if (fused) graph.tensors[size_t(t)].internal = true;
  }
}

}  // namespace irnet
