#include "graph/plan.h"

#include <algorithm>
#include <chrono>
#include <exception>

#include "graph/rewrite.h"

namespace irnet {

namespace {

// NCHW (PyTorch) -> NHWC (engine) for one sample.
void to_nhwc(const float* src, const Shape& s, float* dst) {
  for (int64_t c = 0; c < s.c; ++c)
    for (int64_t p = 0; p < s.h * s.w; ++p) dst[p * s.c + c] = src[c * s.h * s.w + p];
}

}  // namespace

Plan::Plan(const GraphDesc& g, const KernelConfig& kernels, int num_threads)
    : kernels_(&kernels), num_threads_(num_threads) {
  check(num_threads >= 1 && num_threads <= 1024, "num_threads must be in 1..1024, got ", num_threads);
  graph_ = build_step_graph(g, kernels);
  fuse_into_producers(graph_);
  fuse_through_max_pools(graph_);
  fuse_max_pools(graph_);
  pass_sign_bits(graph_);
  memory_ = plan_memory(graph_);
}

// A batch of at least as many samples as threads runs as that many single-thread runs over
// contiguous slices of the batch, one per thread: no barrier between layers (a layer-parallel
// run has two per conv, and on a busy or virtualized host a preempted thread stalls both at
// each), and each thread's activations stay the size of a small batch, in its own caches. The
// weights are shared and read-only. Only when the slices are even, or at least 4 samples each
// (a slice one sample longer than another then costs at most 25%).
static bool split_batch(int64_t batch, int threads) {
  return threads > 1 && batch >= threads && (batch % threads == 0 || batch >= 4 * int64_t(threads));
}

// A single-thread run goes through the network a few samples at a time: as many as keep the
// arena (every live activation) within a few MB, about what a core's share of the caches
// holds. Measured at 1 thread, batch 8 (CPU time per image): ResNet-18 at 224x224 (4.6 MB a
// sample) 21.8 ms layer by layer over the whole batch vs 18.7 ms one sample at a time;
// ResNet-20 (0.14 MB) 0.58 vs 0.76 ms the other way round.
static int64_t samples_per_pass(int64_t arena_bytes_per_sample) {
  constexpr int64_t kArenaBytes = int64_t(4) << 20;
  return std::max<int64_t>(1, kArenaBytes / std::max<int64_t>(1, arena_bytes_per_sample));
}

void Plan::run_passes(const float* input, int64_t batch, bool input_nhwc, float* output) const {
  const int64_t step = samples_per_pass(memory_.arena_bytes_per_sample);
  const int64_t in_floats = input_shape().numel(), out_floats = output_shape().numel();
  for (int64_t n0 = 0; n0 < batch; n0 += step)
    run_layers(input + n0 * in_floats, std::min(step, batch - n0), input_nhwc, output + n0 * out_floats,
               nullptr, nullptr, 1);
}

void Plan::run(const float* input, int64_t batch, bool input_nhwc, float* output,
               std::map<std::string, std::vector<float>>* debug,
               std::vector<double>* step_seconds) const {
  check(batch >= 1, "batch must be >= 1");
  // Debug and profiling runs stay layer-parallel: they report per-layer tensors and times.
  if (debug || step_seconds || (num_threads_ > 1 && !split_batch(batch, num_threads_)))
    return run_layers(input, batch, input_nhwc, output, debug, step_seconds, num_threads_);
  if (num_threads_ == 1) return run_passes(input, batch, input_nhwc, output);
  const int threads = num_threads_;
  const int64_t in_floats = input_shape().numel(), out_floats = output_shape().numel();
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int t = 0; t < threads; ++t) {
    const int64_t n0 = batch * t / threads, n1 = batch * (t + 1) / threads;
    // The ops' orphaned `omp for` loops bind to the innermost region: this team of one, not
    // the team above, whose threads each run their own samples.
#pragma omp parallel num_threads(1)
    try {
      run_passes(input + n0 * in_floats, n1 - n0, input_nhwc, output + n0 * out_floats);
    } catch (...) {
      errors[size_t(t)] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

void Plan::run_layers(const float* input, int64_t batch, bool input_nhwc, float* output,
                      std::map<std::string, std::vector<float>>* debug,
                      std::vector<double>* step_seconds, int threads) const {
  const int64_t per_sample = debug ? memory_.debug_bytes_per_sample : memory_.arena_bytes_per_sample;
  const size_t arena_size = size_t(checked_mul(per_sample, batch, "batch buffers"));
  AlignedVector<std::byte> arena;
  {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    if (!pool_.empty()) {
      arena.swap(pool_.back());
      pool_.pop_back();
    }
  }
  if (arena.size() < arena_size) arena.resize(arena_size);
  struct GiveBack {
    const Plan* plan;
    AlignedVector<std::byte>* arena;
    ~GiveBack() {
      std::lock_guard<std::mutex> lock(plan->pool_mutex_);
      if (plan->pool_.size() < 8) plan->pool_.push_back(std::move(*arena));
    }
  } give_back{this, &arena};
  // The arena is raw bytes; each tensor's buffer is read and written as one type only, float
  // or, for a tensor of sign bits, uint64_t, from the step that writes it to the last that
  // reads it. A region that a later tensor of the other type reuses is written by that
  // tensor's step before anything reads it as that type. So no memory is ever read as a type
  // other than the one it was written as: what strict aliasing requires (a float* cast to
  // uint64_t* would not be; ops get the pointer of their buffer's type in RunArgs).
  auto bytes = [&](int t) -> std::byte* {
    return arena.data() + (debug ? memory_.debug_offset : memory_.offset)[size_t(t)] * batch;
  };
  auto bits = [&](int t) -> uint64_t* { return reinterpret_cast<uint64_t*>(bytes(t)); };
  // The output is written straight into the caller's buffer and a channels-last input is read
  // where it is: neither is copied.
  auto out_buffer = [&](int t) -> float* {
    return t == graph_.output ? output : reinterpret_cast<float*>(bytes(t));
  };
  auto in_buffer = [&](int t) -> const float* {
    return t == 0 && input_nhwc ? input : out_buffer(t);
  };
  const Shape& in = input_shape();
  if (!input_nhwc)
    for (int64_t n = 0; n < batch; ++n) to_nhwc(input + n * in.numel(), in, out_buffer(0) + n * in.numel());
  if (step_seconds) step_seconds->assign(graph_.steps.size(), 0.0);
  for (size_t s = 0; s < graph_.steps.size(); ++s) {
    const Step& step = graph_.steps[s];
    RunArgs args{{}, nullptr, batch, kernels_, threads};
    if (graph_.tensors[size_t(step.out)].sign_bits)
      args.out_bits = bits(step.out);
    else
      args.out = out_buffer(step.out);
    if (step.out_bits >= 0) args.out_bits = bits(step.out_bits);
    for (int t : step.in) {
      const bool sign_bits = graph_.tensors[size_t(t)].sign_bits;
      args.in.push_back(sign_bits ? nullptr : in_buffer(t));
      if (sign_bits) args.in_bits = bits(t);  // only ever the first input (pass_sign_bits)
    }
    const auto t0 = std::chrono::steady_clock::now();
    step.op->run(args);
    if (step_seconds)
      (*step_seconds)[s] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (debug)
    for (size_t t = 0; t < graph_.tensors.size(); ++t)
      if (memory_.written(int(t)) && !graph_.tensors[t].internal) {
        const float* b = in_buffer(int(t));
        (*debug)[graph_.tensors[t].name] = std::vector<float>(b, b + graph_.tensors[t].shape.numel() * batch);
      }
}

std::vector<StepInfo> Plan::steps() const {
  std::vector<StepInfo> out;
  for (const Step& s : graph_.steps) {
    StepInfo info{s.op->desc().name, s.op->desc().type, {}, graph_.tensors[size_t(s.out)].name,
                  graph_.tensors[size_t(s.out)].shape, s.op->binary_macs(), s.op->float_macs(), s.fused};
    for (int t : s.in) info.inputs.push_back(graph_.tensors[size_t(t)].name);
    out.push_back(info);
  }
  return out;
}

std::map<std::string, Shape> Plan::tensor_shapes() const {
  // The sign bits the plan adds beside a tensor (Step::out_bits) are none of the graph's.
  std::vector<bool> added(graph_.tensors.size(), false);
  for (const Step& s : graph_.steps)
    if (s.out_bits >= 0) added[size_t(s.out_bits)] = true;
  std::map<std::string, Shape> out;
  for (size_t t = 0; t < graph_.tensors.size(); ++t)
    if (!added[t]) out[graph_.tensors[t].name] = graph_.tensors[t].shape;
  return out;
}

}  // namespace irnet
