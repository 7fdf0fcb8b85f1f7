// irnet-run: an .irb model without Python.
//   irnet-run MODEL.irb                      prints the model's summary
//   irnet-run MODEL.irb INPUT.npy OUTPUT.npy runs float32 (N, C, H, W) or (C, H, W) inputs
// Options: --threads N (default: the hardware threads), --isa NAME (default: IRNET_ISA, else
// the best this CPU runs), --dump DIR (also write every tensor the engine computes, as
// Model.run_debug returns them, to DIR/<name>.npy: how CI compares whole networks across
// machines layer by layer). Exit status: 0 done; 1 the model file is invalid; 2 a bad argument
// or input; 3 a file cannot be read or written; 4 out of memory. Messages name the category
// as the Python package does (IrbFormatError, ValueError, OSError).
#include <cctype>
#include <cmath>
#include <map>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "graph/plan.h"
#include "bindings/runtime/errors.h"
#include "bindings/runtime/irb_file.h"
#include "bindings/runtime/npy.h"

using namespace irnet;

namespace {

// The --isa names come from the engine's one list (kernels/config.h all_isas()).
std::string usage() {
  std::string isas;
  for (const std::string& isa : all_isas()) isas += (isas.empty() ? "" : "|") + isa;
  return "usage: irnet-run MODEL.irb [INPUT.npy OUTPUT.npy [--dump DIR]] [--threads N] [--isa " + isas + "]\n";
}

// The same bound as irnet_infer.Model (DEFAULT_MAX_BATCH_BYTES and its per-sample estimate).
constexpr double kMaxBatchBytes = 4.0 * 1024 * 1024 * 1024;

struct Args {
  std::string model, input, output, isa, dump;
  int threads = 0;
};

Args parse_args(int argc, char** argv) {
  Args a;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads" || arg == "--isa" || arg == "--dump") {
      check(i + 1 < argc, arg, " needs a value");
      const std::string v = argv[++i];
      if (arg != "--threads") {
        (arg == "--isa" ? a.isa : a.dump) = v;
        continue;
      }
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      check(!v.empty() && *end == 0 && n >= 1 && n <= 1024, "--threads must be an integer in 1..1024, got '", v, "'");
      a.threads = int(n);
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(usage().c_str(), stdout);
      std::exit(0);
    } else {
      check(arg.size() < 2 || arg.compare(0, 2, "--") != 0, "unknown option ", arg);
      positional.push_back(arg);
    }
  }
  check(positional.size() == 1 || positional.size() == 3, "expected MODEL.irb, or MODEL.irb INPUT.npy OUTPUT.npy");
  a.model = positional[0];
  if (positional.size() == 3) {
    a.input = positional[1];
    a.output = positional[2];
  }
  check(a.dump.empty() || !a.input.empty(), "--dump needs INPUT.npy OUTPUT.npy");
  if (!a.threads) {
    const unsigned hw = std::thread::hardware_concurrency();
    a.threads = hw ? int(hw) : 1;
  }
  return a;
}

std::string shape_str(const Shape& s) {
  return s.spatial ? "(" + std::to_string(s.c) + ", " + std::to_string(s.h) + ", " + std::to_string(s.w) + ")"
                   : "(" + std::to_string(s.c) + ",)";
}

void print_summary(const std::string& path, const IrbFile& f, const Plan& plan) {
  const std::string arch = f.producer.contains("arch") && f.producer["arch"].is_string()
                               ? f.producer["arch"].get<std::string>() : "?";
  std::printf("irnet-infer model %s\n  arch: %s   input: %s   output: %s   isa: %s   threads: %d\n", path.c_str(),
              arch.c_str(), shape_str(plan.input_shape()).c_str(), shape_str(plan.output_shape()).c_str(),
              plan.kernels().isa, plan.num_threads());
  int64_t binary = 0, floats = 0;
  for (const StepInfo& s : plan.steps()) {
    binary += s.binary_macs;
    floats += s.float_macs;
    std::string name = s.name;
    if (!s.fused.empty()) {
      name += " (+";
      for (size_t i = 0; i < s.fused.size(); ++i) name += (i ? ", " : "") + s.fused[i];
      name += ")";
    }
    std::printf("  %-16s %-40s -> %s\n", s.type.c_str(), name.c_str(), shape_str(s.out_shape).c_str());
  }
  const double total = double(binary + floats);
  std::printf("  MACs: %.1f M binary, %.1f M float (%.1f%% binary)\n", binary / 1e6, floats / 1e6,
              total ? 100.0 * binary / total : 0.0);
}

// Engine buffers per sample, estimated as irnet_infer.Model._estimate_bytes_per_sample does.
double bytes_per_sample(const Plan& plan) {
  int64_t biggest = plan.input_shape().numel();
  for (const StepInfo& s : plan.steps()) biggest = std::max(biggest, s.out_shape.numel());
  return 4.0 * double(std::max(biggest * 32, plan.arena_floats_per_sample() + 2 * biggest));
}

// The engine keeps maps channels-last; files get NCHW like Model.predict's arrays.
void write_tensor(const std::string& path, int64_t batch, const Shape& s, const float* data) {
  if (!s.spatial) return write_npy_f32(path, {batch, s.c}, data);
  std::vector<float> nchw(size_t(batch * s.numel()));
  const int64_t hw = s.h * s.w;
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t c = 0; c < s.c; ++c) nchw[size_t((n * s.c + c) * hw + p)] = data[(n * hw + p) * s.c + c];
  write_npy_f32(path, {batch, s.c, s.h, s.w}, nchw.data());
}

void run(const Args& a, const Plan& plan) {
  NpyArray x = read_npy_f32(a.input);
  const Shape& in = plan.input_shape();
  if (x.shape.size() == 3) x.shape.insert(x.shape.begin(), 1);
  check(x.shape.size() == 4 && x.shape[1] == in.c && x.shape[2] == in.h && x.shape[3] == in.w,
        a.input, ": input must be (N, ", in.c, ", ", in.h, ", ", in.w, ") or (", in.c, ", ", in.h, ", ", in.w, ")");
  const int64_t batch = x.shape[0];
  check(batch >= 1, a.input, ": empty batch: the input has 0 samples");
  check(double(batch) * bytes_per_sample(plan) <= kMaxBatchBytes, a.input, ": batch of ", batch,
        " needs more than 4 GiB of engine buffers; split the batch");
  for (float v : x.data) check(std::isfinite(v), a.input, ": input contains NaN or Inf; the engine refuses non-finite inputs");
  std::vector<float> out(size_t(batch * plan.output_shape().numel()));
  std::map<std::string, std::vector<float>> tensors;
  plan.run(x.data.data(), batch, false, out.data(), a.dump.empty() ? nullptr : &tensors);
  write_tensor(a.output, batch, plan.output_shape(), out.data());
  const std::map<std::string, Shape> shapes = plan.tensor_shapes();
  for (const auto& [name, data] : tensors) {
    std::string file = name;  // graph names are free text: only safe characters reach the path
    for (char& ch : file)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-' && ch != '.') ch = '_';
    write_tensor(a.dump + "/" + file + ".npy", batch, shapes.at(name), data.data());
  }
}

int main_checked(int argc, char** argv) {
  Args args;
  try {
    args = parse_args(argc, argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "irnet-run: %s\n%s", e.what(), usage().c_str());
    return 2;
  }
  const KernelConfig* kernels = nullptr;
  try {
    kernels = &kernel_config(args.isa);
  } catch (const Error& e) {
    std::fprintf(stderr, "irnet-run: ValueError: %s\n", e.what());
    return 2;
  }
  IrbFile f;
  std::unique_ptr<Plan> plan;
  try {
    f = read_irb(args.model);
    // As in irnet_infer.Model: what the plan refuses is a fault of the file.
    plan = std::make_unique<Plan>(f.graph, *kernels, args.threads);
    const Shape& os = plan->output_shape();
    if (f.classes && (os.spatial || size_t(os.c) != f.classes->size()))
      throw FormatError(args.model + ": " + std::to_string(f.classes->size()) + " class names for output shape " +
                        shape_str(os));
  } catch (const IoError& e) {
    std::fprintf(stderr, "irnet-run: OSError: %s\n", e.what());
    return 3;
  } catch (const FormatError& e) {
    std::fprintf(stderr, "irnet-run: IrbFormatError: %s\n", e.what());
    return 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "irnet-run: IrbFormatError: %s: %s\n", args.model.c_str(), e.what());
    return 1;
  }
  if (args.input.empty()) {
    print_summary(args.model, f, *plan);
    return 0;
  }
  try {
    run(args, *plan);
  } catch (const IoError& e) {
    std::fprintf(stderr, "irnet-run: OSError: %s\n", e.what());
    return 3;
  } catch (const Error& e) {
    std::fprintf(stderr, "irnet-run: ValueError: %s\n", e.what());
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return main_checked(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "irnet-run: MemoryError: out of memory\n");
    return 4;
  }
}
