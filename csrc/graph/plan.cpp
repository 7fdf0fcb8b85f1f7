#include "graph/plan.h"

#include <algorithm>
#include <chrono>
#include <set>

namespace irnet {

namespace {

// NHWC (engine) <-> NCHW (PyTorch) for one sample; vectors are the same in both.
void to_nhwc(const float* src, const Shape& s, float* dst) {
  for (int64_t c = 0; c < s.c; ++c)
    for (int64_t p = 0; p < s.h * s.w; ++p) dst[p * s.c + c] = src[c * s.h * s.w + p];
}
void to_nchw(const float* src, const Shape& s, float* dst) {
  for (int64_t c = 0; c < s.c; ++c)
    for (int64_t p = 0; p < s.h * s.w; ++p) dst[c * s.h * s.w + p] = src[p * s.c + c];
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
  checked_mul(checked_mul(in.c, in.h, "input"), in.w, "input");
  check(!g.ops.empty(), "graph has no ops");

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
    checked_mul(out.numel(), 1, "output");
    check(out.numel() <= (int64_t(1) << 31), d.where(), ": output is too large");
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
  fold_affine_ops();
  assign_buffers();
}

void Plan::fold_affine_ops() {
  std::vector<int> consumers(tensors_.size(), 0);
  for (const Step& s : steps_)
    for (int t : s.in) ++consumers[size_t(t)];
  for (size_t i = 0; i < steps_.size(); ++i) {
    Step& producer = steps_[i];
    const int t = producer.out;
    if (t == output_ || consumers[size_t(t)] != 1) continue;
    for (size_t j = i + 1; j < steps_.size(); ++j) {
      Step& next = steps_[j];
      if (std::find(next.in.begin(), next.in.end(), t) == next.in.end()) continue;
      std::vector<float> scale, shift;
      if (next.op->as_affine(&scale, &shift) && producer.op->fold_affine(scale, shift)) {
        producer.out = next.out;
        producer.fused.push_back(next.op->desc().name);
        steps_.erase(steps_.begin() + long(j));
      }
      break;
    }
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
    const int64_t size = tensors_[t].shape.numel();
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

std::vector<float> Plan::run(const float* input, int64_t batch,
                             std::map<std::string, std::vector<float>>* debug,
                             std::vector<double>* step_seconds) const {
  check(batch >= 1, "batch must be >= 1");
  const int64_t per_sample = debug ? debug_per_sample_ : arena_per_sample_;
  std::vector<float> arena(size_t(checked_mul(per_sample, batch, "batch buffers")));
  auto buffer = [&](int t) {
    const Tensor& x = tensors_[size_t(t)];
    return arena.data() + (debug ? x.debug_offset : x.offset) * batch;
  };
  const Shape& in = input_shape();
  for (int64_t n = 0; n < batch; ++n) to_nhwc(input + n * in.numel(), in, buffer(0) + n * in.numel());
  if (step_seconds) step_seconds->assign(steps_.size(), 0.0);
  for (size_t s = 0; s < steps_.size(); ++s) {
    const Step& step = steps_[s];
    RunArgs args{{}, buffer(step.out), batch, kernels_, num_threads_};
    for (int t : step.in) args.in.push_back(buffer(t));
    const auto t0 = std::chrono::steady_clock::now();
    step.op->run(args);
    if (step_seconds)
      (*step_seconds)[s] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  auto export_tensor = [&](int t) {
    const Shape& s = tensors_[size_t(t)].shape;
    std::vector<float> out(size_t(s.numel() * batch));
    for (int64_t n = 0; n < batch; ++n) to_nchw(buffer(t) + n * s.numel(), s, out.data() + n * s.numel());
    return out;
  };
  if (debug)
    for (size_t t = 0; t < tensors_.size(); ++t)
      if (tensors_[t].written)
        (*debug)[tensors_[t].name] = export_tensor(int(t));
  return export_tensor(output_);
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
  for (const Tensor& t : tensors_)
    if (t.written) out[t.name] = t.shape;
  return out;
}

}  // namespace irnet
