// The execution plan: built once from a checked GraphDesc (shapes inferred, ops prepared,
// batch_norm folded into the convolution before it, buffers assigned by liveness), then run
// many times. run() is const and allocates its own buffers, so concurrent calls are safe.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "aligned.h"
#include "graph/desc.h"
#include "kernels/config.h"
#include "ops/op.h"

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

  const Shape& input_shape() const { return tensors_[0].shape; }
  const Shape& output_shape() const { return tensors_[size_t(output_)].shape; }
  std::vector<StepInfo> steps() const;
  // Per-sample shape of every tensor of the graph (the input and every op's output, fused
  // away or not), as the ops' prepare() inferred them.
  std::map<std::string, Shape> tensor_shapes() const;
  const KernelConfig& kernels() const { return *kernels_; }
  int num_threads() const { return num_threads_; }
  // Floats per sample of the arena that run() allocates (liveness-shared buffers).
  int64_t arena_floats_per_sample() const { return arena_per_sample_; }

 private:
  struct Tensor {
    std::string name;
    Shape shape;
    int64_t offset = 0;        // per sample, in the shared arena
    int64_t debug_offset = 0;  // per sample, when every tensor is kept
    bool written = false;      // false for tensors folded away
    // Holds what the graph's tensor of that name does not (sign bits, or a conv output with
    // ops moved ahead of a pool): left out of debug runs.
    bool internal = false;
  };
  struct Step {
    std::unique_ptr<Op> op;
    std::vector<int> in;
    int out = -1;
    std::vector<std::string> fused;
  };
  void run_passes(const float* input, int64_t batch, bool input_nhwc, float* output) const;
  void run_layers(const float* input, int64_t batch, bool input_nhwc, float* output,
                  std::map<std::string, std::vector<float>>* debug, std::vector<double>* step_seconds,
                  int threads) const;
  int only_consumer(int t) const;
  void fuse_ops();
  void fuse_through_max_pools();
  void pass_bits();
  void assign_buffers();

  const KernelConfig* kernels_;
  int num_threads_;
  std::vector<Tensor> tensors_;  // tensors_[0] is the graph input
  std::vector<Step> steps_;
  int output_ = -1;
  int64_t arena_per_sample_ = 0, debug_per_sample_ = 0;
  // Arenas of finished runs, reused so steady-state runs neither allocate nor page-fault.
  mutable std::mutex pool_mutex_;
  mutable std::vector<AlignedVector<float>> pool_;
};

}  // namespace irnet
