#include "graph/plan.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <set>

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
  check(g.input_shape.size() == 3, "graph input must have shape [C,H,W], got ",
        g.input_shape.size(), " dimensions");
  for (int64_t d : g.input_shape)
    check(d >= 1 && d <= (1 << 20), "graph input dimensions must be in 1..2^20");
  Shape in{g.input_shape[0], g.input_shape[1], g.input_shape[2], true};
  check(checked_mul(checked_mul(in.c, in.h, "input"), in.w, "input") <= kMaxElements,
        "graph input ", in.str(), " is too large (over 2^28 elements)");
  check(!g.ops.empty(), "graph has no ops");
  // The passes below compare steps pairwise: the cap bounds their work (irnet_infer/format.py
  // states the same limit).
  check(g.ops.size() <= 4096, "graph has ", g.ops.size(), " ops, more than the limit of 4096");

  std::map<std::string, int> ids{{g.input_name, 0}};
  tensors_.push_back({g.input_name, in});
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
      shapes.push_back(tensors_[size_t(it->second)].shape);
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
    step.out = int(tensors_.size());
    ids[d.outputs[0]] = step.out;
    tensors_.push_back({d.outputs[0], out});
    steps_.push_back(std::move(step));
  }
  for (const auto& [name, t] : g.tensors)
    check(used_params.count(name), "tensor '", name, "' is not used by any op");
  auto out = ids.find(g.output_name);
  check(out != ids.end() && out->second != 0, "graph output '", g.output_name,
        "' is not produced by any op");
  output_ = out->second;
  fuse_ops();
  fuse_through_max_pools();
  pass_bits();
  assign_buffers();
}

// The one step reading tensor t, or -1 when none or several do or t is the graph output (its
// values must then stay as they are).
int Plan::only_consumer(int t) const {
  if (t == output_) return -1;
  int found = -1, n = 0;
  for (size_t s = 0; s < steps_.size(); ++s) {
    const int k = int(std::count(steps_[s].in.begin(), steps_[s].in.end(), t));
    if (k) found = int(s);
    n += k;
  }
  return n == 1 ? found : -1;
}

// conv -> max_pool -> batch_norm -> hardtanh (VGG-Small), after fuse_ops: the batch_norm and
// the clamp move into the conv, ahead of the pool. Exact: max commutes with any non-decreasing
// map, and x * s + t rounded is non-decreasing for s > 0 (a clamp always is); with finite s
// and t, and a fold that stays finite (fold_affine checks), it makes no NaN from a number, so
// NaN propagation is unchanged too. The conv's own output then holds values PyTorch never
// computes: debug runs leave it out.
void Plan::fuse_through_max_pools() {
  for (size_t i = 0; i < steps_.size(); ++i) {
    const int t = steps_[i].out;
    int q = only_consumer(t);
    if (q < 0 || steps_[size_t(q)].op->desc().type != "max_pool2d") continue;
    bool fused = false;
    for (;;) {
      const int pooled = steps_[size_t(q)].out;
      const int j = only_consumer(pooled);
      if (j < 0) break;
      Step& next = steps_[size_t(j)];
      std::vector<float> scale, shift;
      float lo, hi;
      bool ok = false;
      if (next.op->as_affine(&scale, &shift)) {
        ok = std::all_of(scale.begin(), scale.end(), [](float v) { return v > 0 && std::isfinite(v); }) &&
             std::all_of(shift.begin(), shift.end(), [](float v) { return std::isfinite(v); }) &&
             steps_[i].op->fold_affine(scale, shift);
      } else if (next.op->as_clamp(&lo, &hi)) {
        ok = steps_[i].op->fuse_clamp(lo, hi);
      }
      if (!ok) break;
      steps_[i].fused.push_back(next.op->desc().name + " (" + next.op->desc().type + ", moved before pooling)");
      steps_[size_t(q)].out = next.out;
      steps_.erase(steps_.begin() + j);
      if (j < q) --q;
      fused = true;
    }
    if (fused) tensors_[size_t(t)].internal = true;
  }
}

// Binary conv -> [max_pool] -> binary conv with nothing else reading the floats between: the
// first conv writes sign bits, the pool (max of values = AND of their "negative" bits) works
// on bits, and the second conv skips its bit-pack. Exact by construction: the bits are what
// the second conv would have computed from the floats.
void Plan::pass_bits() {
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (steps_[i].op->desc().type != "bconv2d") continue;
    std::vector<int> chain{int(i)};  // producer, [pool], consumer
    int t = steps_[i].out;
    for (;;) {
      const int j = only_consumer(t);
      if (j < 0) break;
      const Step& next = steps_[size_t(j)];
      if (next.in[0] != t) break;  // e.g. the residual operand of a binary conv
      chain.push_back(j);
      if (next.op->desc().type == "max_pool2d" && chain.size() == 2) {
        t = next.out;
        continue;
      }
      break;
    }
    if (chain.size() < 2 || steps_[size_t(chain.back())].op->desc().type != "bconv2d") continue;
    // The bits (ceil(C/64) words a pixel) are stored where the floats would be: C >= 2.
    const int64_t channels = tensors_[size_t(steps_[i].out)].shape.c;
    if (2 * int64_t(words_for(size_t(channels))) > channels) continue;
    // Binary convs and max pools always agree (the chain has no other op types).
    steps_[i].op->output_as_bits();
    for (size_t c = 1; c < chain.size(); ++c) {
      Op& op = *steps_[size_t(chain[c])].op;
      check(op.input_as_bits() && (c + 1 == chain.size() || op.output_as_bits()), op.desc().where(),
            ": cannot pass sign bits");
    }
    for (size_t c = 0; c + 1 < chain.size(); ++c) tensors_[size_t(steps_[size_t(chain[c])].out)].internal = true;
  }
}

void Plan::fuse_ops() {
  auto written_before = [&](int t, size_t step) {
    if (t == 0) return true;
    for (size_t s = 0; s < step; ++s)
      if (steps_[s].out == t) return true;
    return false;
  };
  std::set<const Op*> moved_once;
  for (size_t i = 0; i < steps_.size(); ++i) {
    Step& producer = steps_[i];
    bool moved = false;
    // Absorb the single consumer while it is an affine map, an add or a clamp the op accepts.
    for (;;) {
      const int t = producer.out;
      const int consumer = only_consumer(t);
      if (consumer < 0) break;
      const size_t j = size_t(consumer);
      Step& next = steps_[j];
      std::vector<float> scale, shift;
      float lo, hi;
      bool fused = false;
      if (next.op->as_affine(&scale, &shift)) {
        fused = producer.op->fold_affine(scale, shift);
      } else if (next.op->desc().type == "add" && next.in.size() == 2) {
        const int other = next.in[0] == t ? next.in[1] : next.in[0];
        if (other == t) break;
        if (!written_before(other, i)) {
          // Each step moves at most once, so two convs feeding one add cannot swap forever.
          if (!moved_once.insert(producer.op.get()).second) break;
          // The residual is computed between producer and add (e.g. a downsample shortcut):
          // run the producer later, just before the add. Its inputs already exist and only
          // the add reads its output, so the order stays valid; it is fused when reached.
          std::rotate(steps_.begin() + long(i), steps_.begin() + long(i) + 1, steps_.begin() + long(j));
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
      steps_.erase(steps_.begin() + long(j));
    }
    if (moved) --i;  // step i is now the one that followed the producer
  }
}

void Plan::assign_buffers() {
  // Live range of each tensor: [step that writes it, last step that reads it]; the input is
  // written at step -1. The output stays live to the end.
  const int n_steps = int(steps_.size());
  std::vector<int> first(tensors_.size(), -2), last(tensors_.size(), -2);
  first[0] = -1;
  last[0] = -1;
  for (int s = 0; s < n_steps; ++s) {
    for (int t : steps_[size_t(s)].in) last[size_t(t)] = s;
    first[size_t(steps_[size_t(s)].out)] = s;
    last[size_t(steps_[size_t(s)].out)] = std::max(last[size_t(steps_[size_t(s)].out)], s);
  }
  last[size_t(output_)] = n_steps;
  struct Placed { int64_t begin, end; int first, last; };
  std::vector<Placed> placed;
  for (size_t t = 0; t < tensors_.size(); ++t) {
    if (first[t] == -2) continue;  // folded away: never written
    // Whole cache lines, so every tensor of every sample starts on one (the arena is aligned).
    const int64_t size = round_to_cache_lines<float>(tensors_[t].shape.numel());
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
    tensors_[t].offset = offset;
    tensors_[t].written = true;
    tensors_[t].debug_offset = debug_per_sample_;
    debug_per_sample_ += size;
    placed.push_back({offset, offset + size, first[t], last[t]});
    arena_per_sample_ = std::max(arena_per_sample_, offset + size);
  }
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
static int64_t samples_per_pass(int64_t arena_floats_per_sample) {
  constexpr int64_t kArenaBytes = int64_t(4) << 20;
  return std::max<int64_t>(1, kArenaBytes / std::max<int64_t>(1, arena_floats_per_sample * int64_t(sizeof(float))));
}

void Plan::run_passes(const float* input, int64_t batch, bool input_nhwc, float* output) const {
  const int64_t step = samples_per_pass(arena_per_sample_);
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
  const int64_t per_sample = debug ? debug_per_sample_ : arena_per_sample_;
  const size_t arena_size = size_t(checked_mul(per_sample, batch, "batch buffers"));
  AlignedVector<float> arena;
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
    AlignedVector<float>* arena;
    ~GiveBack() {
      std::lock_guard<std::mutex> lock(plan->pool_mutex_);
      if (plan->pool_.size() < 8) plan->pool_.push_back(std::move(*arena));
    }
  } give_back{this, &arena};
  // The output is written straight into the caller's buffer and a channels-last input is read
  // where it is: neither is copied.
  auto out_buffer = [&](int t) -> float* {
    const Tensor& x = tensors_[size_t(t)];
    return t == output_ ? output : arena.data() + (debug ? x.debug_offset : x.offset) * batch;
  };
  auto in_buffer = [&](int t) -> const float* {
    return t == 0 && input_nhwc ? input : out_buffer(t);
  };
  const Shape& in = input_shape();
  if (!input_nhwc)
    for (int64_t n = 0; n < batch; ++n) to_nhwc(input + n * in.numel(), in, out_buffer(0) + n * in.numel());
  if (step_seconds) step_seconds->assign(steps_.size(), 0.0);
  for (size_t s = 0; s < steps_.size(); ++s) {
    const Step& step = steps_[s];
    RunArgs args{{}, out_buffer(step.out), batch, kernels_, threads};
    for (int t : step.in) args.in.push_back(in_buffer(t));
    const auto t0 = std::chrono::steady_clock::now();
    step.op->run(args);
    if (step_seconds)
      (*step_seconds)[s] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (debug)
    for (size_t t = 0; t < tensors_.size(); ++t)
      if (tensors_[t].written && !tensors_[t].internal) {
        const float* b = in_buffer(int(t));
        (*debug)[tensors_[t].name] = std::vector<float>(b, b + tensors_[t].shape.numel() * batch);
      }
}

std::vector<StepInfo> Plan::steps() const {
  std::vector<StepInfo> out;
  for (const Step& s : steps_) {
    StepInfo info{s.op->desc().name, s.op->desc().type, {}, tensors_[size_t(s.out)].name,
                  tensors_[size_t(s.out)].shape, s.op->binary_macs(), s.op->float_macs(), s.fused};
    for (int t : s.in) info.inputs.push_back(tensors_[size_t(t)].name);
    out.push_back(info);
  }
  return out;
}

}  // namespace irnet

namespace irnet {

std::map<std::string, Shape> Plan::tensor_shapes() const {
  std::map<std::string, Shape> out;
  for (const Tensor& t : tensors_) out[t.name] = t.shape;
  return out;
}

}  // namespace irnet
