// The execution plan: built once from a GraphDesc (step_graph.h: references checked, shapes
// inferred, ops prepared; rewrite.h: ops fused; memory_plan.h: buffers shared by liveness),
// then run many times. run() is const and takes its arena from a pool (or allocates one), so
// concurrent calls are safe.
#pragma once
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "aligned.h"
#include "graph/memory_plan.h"
#include "graph/step_graph.h"
#include "kernels/config.h"
#include "model/desc.h"

namespace irnet {

struct StepInfo {
  std::string name, type;
  std::vector<std::string> inputs;
  std::string output;
  Shape out_shape;
  int64_t binary_macs = 0, float_macs = 0;
  std::vector<std::string> fused;  // ops folded into this one
};

class Plan {
 public:
  Plan(const GraphDesc& desc, const KernelConfig& kernels, int num_threads);

  // input: `batch` samples, NCHW float32 (or NHWC with input_nhwc). Writes the output to
  // `output` (batch x output numel floats) in the engine's layout: maps NHWC, vectors as they
  // are. With `debug`, every tensor the plan computes is also returned by name, in that layout.
  // A batch of at least num_threads samples is split across the threads by samples (each
  // slice a single-thread run, a few samples per pass through the network); otherwise each
  // layer is split across them.
  void run(const float* input, int64_t batch, bool input_nhwc, float* output,
           std::map<std::string, std::vector<float>>* debug = nullptr,
           std::vector<double>* step_seconds = nullptr) const;

  const Shape& input_shape() const { return graph_.tensors[0].shape; }
  const Shape& output_shape() const { return graph_.tensors[size_t(graph_.output)].shape; }
  std::vector<StepInfo> steps() const;
  // Per-sample shape of every tensor of the graph (the input and every op's output, fused
  // away or not), as the ops' prepare() inferred them.
  std::map<std::string, Shape> tensor_shapes() const;
  const KernelConfig& kernels() const { return *kernels_; }
  int num_threads() const { return num_threads_; }
  // Size per sample of the arena that run() allocates (liveness-shared buffers), in floats
  // (bytes / 4: a whole number, the arena being whole cache lines).
  int64_t arena_floats_per_sample() const {
    return memory_.arena_bytes_per_sample / int64_t(sizeof(float));
  }

 private:
  void run_passes(const float* input, int64_t batch, bool input_nhwc, float* output) const;
  void run_layers(const float* input, int64_t batch, bool input_nhwc, float* output,
                  std::map<std::string, std::vector<float>>* debug, std::vector<double>* step_seconds,
                  int threads) const;

  const KernelConfig* kernels_;
  int num_threads_;
  StepGraph graph_;
  MemoryPlan memory_;
  // Arenas of finished runs, reused so steady-state runs neither allocate nor page-fault.
  mutable std::mutex pool_mutex_;
  mutable std::vector<AlignedVector<std::byte>> pool_;
};

}  // namespace irnet
