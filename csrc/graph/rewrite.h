// The plan's rewrite passes, run in this order on a built StepGraph. Each asks the ops what
// they can do (ops/op.h), never their type, so a new op needs no edit here. Every rewrite is
// exact: outputs stay what running the graph op by op gives.
#pragma once
#include "graph/step_graph.h"

namespace irnet {

// Folds into a step the ops that only it feeds: an affine map (batch_norm), an add (the other
// operand becoming a residual input) and a clamp, as far as the step accepts them.
void fuse_into_producers(StepGraph& graph);

// Moves an increasing affine map or clamp that follows a max pool into the step before it.
void fuse_through_max_pools(StepGraph& graph);

// Has a step pool its own output where a max pool is its only reader (the float stem).
void fuse_max_pools(StepGraph& graph);

// Has ops pass sign bits instead of floats where only binary convolutions read them.
void pass_sign_bits(StepGraph& graph);

}  // namespace irnet
