// The graph as the plan runs it: ops constructed and prepared in file order (references
// checked, shapes inferred), tensors by index. The passes of rewrite.h then change it in place,
// and memory_plan.h gives its tensors buffers.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kernels/config.h"
#include "model/desc.h"
#include "ops/op.h"

namespace irnet {

struct PlanTensor {
  std::string name;
  Shape shape;
  // Holds sign bits (per pixel, ceil(C/64) uint64_t words: pass_sign_bits), not floats.
  bool sign_bits = false;
  Op::BitsBorder border{};  // of a map of sign bits (ops/op.h)
  // Holds what the graph's tensor of that name does not (sign bits, or a conv output with
  // ops moved ahead of a pool): left out of debug runs.
  bool internal = false;
};

struct Step {
  std::unique_ptr<Op> op;
  std::vector<int> in;  // tensor indices
  int out = -1;
  int out_bits = -1;  // the sign bits of `out`, written with it (output_floats_and_bits), or -1
  std::vector<std::string> fused;  // ops folded into this one, for reports
};

struct StepGraph {
  std::vector<PlanTensor> tensors;  // tensors[0] is the graph input
  std::vector<Step> steps;          // in execution order
  int output = -1;

  // The one step reading tensor t, or -1 when none or several do or t is the graph output
  // (its values must then stay as they are).
  int only_consumer(int t) const;
};

// Checks every reference, parameter use and size limit of `desc`, and prepares its ops.
StepGraph build_step_graph(const GraphDesc& desc, const KernelConfig& kernels);

}  // namespace irnet
