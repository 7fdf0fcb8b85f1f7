// A conv (binary or float) absorbs a batch_norm, then an add, then a hardtanh / relu that only
// it feeds: a Bi-Real block hardtanh(bn(conv(x)) + x) becomes one step.
#include <algorithm>
#include <set>

#include "graph/rewrite.h"

namespace irnet {

void fuse_into_producers(StepGraph& graph) {
  std::vector<Step>& steps = graph.steps;
  auto written_before = [&](int t, size_t step) {
    if (t == 0) return true;
    for (size_t s = 0; s < step; ++s)
      if (steps[s].out == t) return true;
    return false;
  };
  std::set<const Op*> moved_once;
  for (size_t i = 0; i < steps.size(); ++i) {
    Step& producer = steps[i];
    bool moved = false;
    // Absorb the single consumer while it is an affine map, an add or a clamp the op accepts.
    for (;;) {
      const int t = producer.out;
      const int consumer = graph.only_consumer(t);
      if (consumer < 0) break;
      const size_t j = size_t(consumer);
      Step& next = steps[j];
      std::vector<float> scale, shift;
      float lo, hi;
      bool fused = false;
      if (next.op->as_affine(&scale, &shift)) {
        fused = producer.op->fold_affine(scale, shift);
      } else if (next.op->is_sum() && next.in.size() == 2) {
        const int other = next.in[0] == t ? next.in[1] : next.in[0];
        if (other == t) break;
        if (!written_before(other, i)) {
          // Only a step that can take the add moves: else the other operand's producer (a
          // ResNet-20 shortcut, computed after the conv) would move back past it, and
          // neither would fuse. Each step moves at most once, so two convs feeding one add
          // cannot swap forever.
          if (!producer.op->can_fuse_residual() || !moved_once.insert(producer.op.get()).second) break;
          // The residual is computed between producer and add (e.g. a downsample shortcut):
          // run the producer later, just before the add. Its inputs already exist and only
          // the add reads its output, so the order stays valid; it is fused when reached.
          std::rotate(steps.begin() + long(i), steps.begin() + long(i) + 1, steps.begin() + long(j));
          moved = true;
          break;
        }
        if (producer.op->fuse_residual()) {
          producer.in.push_back(other);
          fused = true;
        }
      } else if (next.op->as_clamp(&lo, &hi)) {
        fused = producer.op->fuse_clamp(lo, hi);
      }
      if (!fused) break;
      producer.out = next.out;
      producer.fused.push_back(next.op->desc().name + " (" + next.op->desc().type + ")");
      steps.erase(steps.begin() + long(j));
    }
    if (moved) --i;  // step i is now the one that followed the producer
  }
}

}  // namespace irnet
