#include "graph/step_graph.h"

#include <algorithm>
#include <map>
#include <set>

namespace irnet {

int StepGraph::only_consumer(int t) const {
  if (t == output) return -1;
  int found = -1, n = 0;
  for (size_t s = 0; s < steps.size(); ++s) {
    const int k = int(std::count(steps[s].in.begin(), steps[s].in.end(), t));
    if (k) found = int(s);
    n += k;
  }
  return n == 1 ? found : -1;
}

StepGraph build_step_graph(const GraphDesc& g, const KernelConfig& kernels) {
  check(g.input_shape.size() == 3, "graph input must have shape [C,H,W], got ",
        g.input_shape.size(), " dimensions");
  for (int64_t d : g.input_shape)
    check(d >= 1 && d <= (1 << 20), "graph input dimensions must be in 1..2^20");
  Shape in{g.input_shape[0], g.input_shape[1], g.input_shape[2], true};
  check(checked_mul(checked_mul(in.c, in.h, "input"), in.w, "input") <= kMaxElements,
        "graph input ", in.str(), " is too large (over 2^28 elements)");
  check(!g.ops.empty(), "graph has no ops");
  // The rewrite passes compare steps pairwise: the cap bounds their work
  // (irnet_infer/format.py states the same limit).
  check(g.ops.size() <= 4096, "graph has ", g.ops.size(), " ops, more than the limit of 4096");

  StepGraph graph;
  std::map<std::string, int> ids{{g.input_name, 0}};
  graph.tensors.push_back({g.input_name, in});
  std::set<std::string> used_params;
  for (const OpDesc& d : g.ops) {
    check(d.outputs.size() == 1, d.where(), ": must have exactly one output");
    Step step;
    std::vector<Shape> shapes;
    for (const std::string& name : d.inputs) {
      auto it = ids.find(name);
      check(it != ids.end(), d.where(), ": input '", name,
            "' is not the graph input or the output of an earlier op");
      step.in.push_back(it->second);
      shapes.push_back(graph.tensors[size_t(it->second)].shape);
    }
    for (const auto& [role, tensor] : d.params) {
      check(used_params.insert(tensor).second, d.where(), ": tensor '", tensor,
            "' is already used by another op");
    }
    step.op = create_op(d);
    Shape out = step.op->prepare(shapes, g, kernels);
    check(within_limit(out), d.where(), ": output ", out.str(), " is too large (over 2^28 elements)");
    check(ids.count(d.outputs[0]) == 0, d.where(), ": output '", d.outputs[0],
          "' is already defined");
    step.out = int(graph.tensors.size());
    ids[d.outputs[0]] = step.out;
    graph.tensors.push_back({d.outputs[0], out});
    graph.steps.push_back(std::move(step));
  }
  for (const auto& [name, t] : g.tensors)
    check(used_params.count(name), "tensor '", name, "' is not used by any op");
  auto out = ids.find(g.output_name);
  check(out != ids.end() && out->second != 0, "graph output '", g.output_name,
        "' is not produced by any op");
  graph.output = out->second;
  return graph;
}

}  // namespace irnet
