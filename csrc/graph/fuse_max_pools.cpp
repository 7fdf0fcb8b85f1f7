// conv -> max_pool (the ResNet-18 stem): the conv pools its own output, a band of rows at a
// time while the band is in cache (ops/conv2d.cpp), instead of writing the whole map for a
// separate pass to read back. Exact: the same pool kernel takes the max of the same floats in
// the same order. The conv's own output is then never written: runs have no buffer for it,
// debug runs leave it out.
#include "graph/rewrite.h"

namespace irnet {

void fuse_max_pools(StepGraph& graph) {
  std::vector<Step>& steps = graph.steps;
  for (size_t i = 0; i < steps.size(); ++i) {
    const int q = graph.only_consumer(steps[i].out);
    Window window{};
    if (q < 0 || !steps[size_t(q)].op->as_max_pool(&window) || !steps[i].op->fuse_max_pool(window)) continue;
    const Step& pool = steps[size_t(q)];
    steps[i].fused.push_back(pool.op->desc().name + " (" + pool.op->desc().type + ")");
    steps[i].out = pool.out;
    steps.erase(steps.begin() + q);
  }
}

}  // namespace irnet
