// pybind11 bindings: the only file that sees Python. It turns Python objects into a GraphDesc
// (checking their types), and runs the plan with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <thread>

#include "graph/plan.h"

namespace py = pybind11;
using namespace irnet;

namespace {

std::string as_str(const py::handle& h, const std::string& what) {
  check(py::isinstance<py::str>(h), what, " must be a string");
  return h.cast<std::string>();
}

std::vector<std::string> as_str_list(const py::handle& h, const std::string& what) {
  check(py::isinstance<py::list>(h) || py::isinstance<py::tuple>(h), what, " must be a list");
  std::vector<std::string> out;
  for (const py::handle& item : h) out.push_back(as_str(item, what + " item"));
  return out;
}

double as_number(const py::handle& h, const std::string& what) {
  // bool is an int in Python; both are accepted as numbers.
  check(py::isinstance<py::int_>(h) || py::isinstance<py::float_>(h), what, " must be a number");
  if (py::isinstance<py::int_>(h)) {
    // Python ints are unbounded: one that does not fit in 64 bits is refused, not cast.
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(h.ptr(), &overflow);
    if (v == -1 && PyErr_Occurred()) PyErr_Clear();
    check(overflow == 0, what, " is too large");
    return double(v);
  }
  return h.cast<double>();
}

py::handle get(const py::dict& d, const char* key, const std::string& what) {
  check(d.contains(key), what, ": missing key '", key, "'");
  return d[key];
}

OpDesc parse_op(const py::handle& h, size_t index) {
  const std::string where = "graph op #" + std::to_string(index);
  check(py::isinstance<py::dict>(h), where, " must be an object");
  py::dict d = py::reinterpret_borrow<py::dict>(h);
  OpDesc op;
  op.type = as_str(get(d, "type", where), where + " type");
  op.name = d.contains("name") ? as_str(d["name"], where + " name") : where;
  op.inputs = as_str_list(get(d, "inputs", where), op.where() + " inputs");
  op.outputs = as_str_list(get(d, "outputs", where), op.where() + " outputs");
  if (d.contains("attrs")) {
    check(py::isinstance<py::dict>(d["attrs"]), op.where(), ": attrs must be an object");
    for (const auto& [k, v] : py::reinterpret_borrow<py::dict>(d["attrs"])) {
      const std::string key = as_str(k, op.where() + " attribute name");
      const std::string what = op.where() + " attribute '" + key + "'";
      std::vector<double> values;
      if (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)) {
        for (const py::handle& x : v) values.push_back(as_number(x, what));
      } else {
        values.push_back(as_number(v, what));
      }
      op.attrs[key] = values;
    }
  }
  if (d.contains("params")) {
    check(py::isinstance<py::dict>(d["params"]), op.where(), ": params must be an object");
    for (const auto& [k, v] : py::reinterpret_borrow<py::dict>(d["params"]))
      op.params[as_str(k, op.where() + " param role")] = as_str(v, op.where() + " param name");
  }
  return op;
}

HostTensor parse_tensor(const std::string& name, const py::handle& h) {
  check(py::isinstance<py::array>(h), "tensor '", name, "' must be a numpy array");
  py::array a = py::reinterpret_borrow<py::array>(h);
  HostTensor t;
  const py::dtype dt = a.dtype();
  if (dt.is(py::dtype::of<float>())) t.dtype = DType::F32;
  else if (dt.is(py::dtype::of<uint64_t>())) t.dtype = DType::U64;
  else if (dt.is(py::dtype::of<int8_t>())) t.dtype = DType::I8;
  else fail("tensor '", name, "' has unsupported dtype ", std::string(py::str(dt)));
  int64_t bytes = int64_t(a.itemsize());
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    t.shape.push_back(int64_t(a.shape(i)));
    bytes = checked_mul(bytes, int64_t(a.shape(i)), "tensor");
  }
  py::array c = py::array::ensure(a, py::array::c_style);
  t.assign(c.data(), size_t(bytes));
  return t;
}

GraphDesc parse_graph(const py::dict& graph, const py::dict& tensors) {
  GraphDesc g;
  py::handle inputs = get(graph, "inputs", "graph");
  check(py::isinstance<py::list>(inputs) && py::len(inputs) == 1, "graph must have exactly one input");
  check(py::isinstance<py::dict>(inputs[py::int_(0)]), "graph input must be an object");
  py::dict in = inputs[py::int_(0)].cast<py::dict>();
  g.input_name = as_str(get(in, "name", "graph input"), "graph input name");
  check(py::isinstance<py::list>(get(in, "shape", "graph input")), "graph input shape must be a list");
  for (const py::handle& x : in["shape"]) {
    const double v = as_number(x, "graph input shape");
    check(v >= 1 && v <= double(1 << 20) && v == double(int64_t(v)),
          "graph input shape values must be integers in 1..2^20");
    g.input_shape.push_back(int64_t(v));
  }
  std::vector<std::string> outputs = as_str_list(get(graph, "outputs", "graph"), "graph outputs");
  check(outputs.size() == 1, "graph must have exactly one output");
  g.output_name = outputs[0];
  py::handle ops = get(graph, "ops", "graph");
  check(py::isinstance<py::list>(ops), "graph ops must be a list");
  size_t i = 0;
  for (const py::handle& op : ops) g.ops.push_back(parse_op(op, i++));
  for (const auto& [k, v] : tensors) {
    const std::string name = as_str(k, "tensor name");
    g.tensors[name] = parse_tensor(name, v);
  }
  return g;
}

int resolve_threads(const py::object& n) {
  if (n.is_none()) {
    const unsigned hw = std::thread::hardware_concurrency();
    return hw ? int(hw) : 1;
  }
  check(py::isinstance<py::int_>(n) && !py::isinstance<py::bool_>(n), "num_threads must be an int or None");
  const long long v = n.cast<long long>();
  check(v >= 1 && v <= 1024, "num_threads must be in 1..1024, got ", v);
  return int(v);
}

class Engine {
 public:
  // Reading the Python objects needs the GIL; planning (weight packing, checks) does not, so
  // other Python threads run while a large model loads.
  Engine(const py::dict& graph, const py::dict& tensors, const py::object& num_threads,
         const std::string& isa) {
    const GraphDesc desc = parse_graph(graph, tensors);
    const int threads = resolve_threads(num_threads);
    const KernelConfig& kernels = kernel_config(isa);
    py::gil_scoped_release release;
    plan_ = std::make_unique<Plan>(desc, kernels, threads);
  }

  py::array run(const py::array& x) const {
    const Input in = take_input(x);
    py::array_t<float> out = engine_array(in.batch, plan_->output_shape());
    float* data = out.mutable_data();
    {
      py::gil_scoped_release release;
      plan_->run(in.data, in.batch, in.nhwc, data);
    }
    return out;
  }

  py::dict run_debug(const py::array& x) const {
    const Input in = take_input(x);
    std::map<std::string, std::vector<float>> tensors;
    std::vector<float> scratch(size_t(in.batch * plan_->output_shape().numel()));
    {
      py::gil_scoped_release release;
      plan_->run(in.data, in.batch, in.nhwc, scratch.data(), &tensors);
    }
    py::dict out;
    const std::map<std::string, Shape> shapes = plan_->tensor_shapes();
    for (const auto& [name, data] : tensors) out[py::str(name)] = to_array(data, in.batch, shapes.at(name));
    return out;
  }

  // Seconds per step for one run: the per-layer profile.
  py::list profile(const py::array& x) const {
    const Input in = take_input(x);
    std::vector<double> seconds;
    std::vector<float> scratch(size_t(in.batch * plan_->output_shape().numel()));
    {
      py::gil_scoped_release release;
      plan_->run(in.data, in.batch, in.nhwc, scratch.data(), nullptr, &seconds);
    }
    py::list out;
    for (double s : seconds) out.append(s);
    return out;
  }

  py::list steps() const {
    py::list out;
    for (const StepInfo& s : plan_->steps()) {
      py::dict d;
      d["name"] = s.name;
      d["type"] = s.type;
      d["inputs"] = s.inputs;
      d["output"] = s.output;
      d["output_shape"] = shape_tuple(s.out_shape);
      d["binary_macs"] = s.binary_macs;
      d["float_macs"] = s.float_macs;
      d["fused"] = s.fused;
      out.append(d);
    }
    return out;
  }

  // {tensor name: per-sample shape} of every tensor of the graph, fused away or not.
  py::dict tensor_shapes() const {
    py::dict out;
    for (const auto& [name, shape] : plan_->tensor_shapes()) out[py::str(name)] = shape_tuple(shape);
    return out;
  }

  py::tuple input_shape() const { return shape_tuple(plan_->input_shape()); }
  py::tuple output_shape() const { return shape_tuple(plan_->output_shape()); }
  std::string isa() const { return plan_->kernels().isa; }
  int num_threads() const { return plan_->num_threads(); }
  int64_t arena_floats_per_sample() const { return plan_->arena_floats_per_sample(); }

 private:
  static py::tuple shape_tuple(const Shape& s) {
    if (s.spatial) return py::make_tuple(s.c, s.h, s.w);
    return py::make_tuple(s.c);
  }

  // A checked (N, C, H, W) float32 input: C-contiguous NCHW, or channels-last (NHWC memory,
  // as torch's channels_last or x.transpose(0, 3, 1, 2) of an NHWC array) taken without a
  // transpose; any other strides are copied to NCHW first.
  struct Input {
    py::array keep;  // owns the memory `data` points into
    const float* data;
    int64_t batch;
    bool nhwc;
  };

  Input take_input(const py::array& x) const {
    // The message is built only on failure: str(dtype) runs Python code (microseconds).
    if (!x.dtype().is(py::dtype::of<float>()))
      throw Error("input must be float32, got " + std::string(py::str(x.dtype())));
    const Shape& s = plan_->input_shape();
    check(x.ndim() == 4, "input must be (N, C, H, W), got ", x.ndim(), " dimensions");
    check(x.shape(1) == s.c && x.shape(2) == s.h && x.shape(3) == s.w, "input must be (N, ", s.c,
          ", ", s.h, ", ", s.w, "), got (", x.shape(0), ", ", x.shape(1), ", ", x.shape(2), ", ",
          x.shape(3), ")");
    check(x.shape(0) >= 1, "input batch is empty");
    const py::ssize_t f = sizeof(float);
    const bool nhwc = x.strides(1) == f && x.strides(3) == s.c * f && x.strides(2) == s.w * s.c * f &&
                      x.strides(0) == s.h * s.w * s.c * f;
    py::array keep = nhwc ? x : py::array(py::array_t<float, py::array::c_style>::ensure(x));
    check(bool(keep), "input could not be read as float32");
    return {keep, static_cast<const float*>(keep.data()), int64_t(x.shape(0)), nhwc};
  }

  // A new array in the engine's memory layout: (N, C) for vectors; for maps NHWC memory
  // with (N, C, H, W) shape and channels-last strides (what x.transpose(0, 3, 1, 2) of an NHWC
  // array gives), made in one call since a Python-level transpose costs microseconds per run.
  // The memory is cache-line aligned (kernels store whole 64-byte lines) and owned by a capsule.
  static py::array_t<float> engine_array(int64_t batch, const Shape& s) {
    const py::ssize_t n = batch, f = sizeof(float), c = s.c, h = s.spatial ? s.h : 1, w = s.spatial ? s.w : 1;
    CacheLineAllocator<float> alloc;
    const size_t count = size_t(n * c * h * w);
    float* data = alloc.allocate(count);
    py::capsule owner(data, [](void* p) { CacheLineAllocator<float>().deallocate(static_cast<float*>(p), 0); });
    if (!s.spatial) return py::array_t<float>({n, c}, {c * f, f}, data, owner);
    return py::array_t<float>({n, c, h, w}, {h * w * c * f, f, w * c * f, c * f}, data, owner);
  }
  static py::array to_array(const std::vector<float>& data, int64_t batch, const Shape& s) {
    py::array_t<float> out = engine_array(batch, s);
    std::memcpy(out.mutable_data(), data.data(), sizeof(float) * data.size());
    return out;
  }

  std::unique_ptr<Plan> plan_;
};

}  // namespace

PYBIND11_MODULE(_engine, m) {
  m.doc() = "irnet-infer C++ engine (private; use irnet_infer.Model)";
  py::register_exception<Error>(m, "EngineError", PyExc_ValueError);
  py::class_<Engine>(m, "Engine")
      .def(py::init<const py::dict&, const py::dict&, const py::object&, const std::string&>(),
           py::arg("graph"), py::arg("tensors"), py::arg("num_threads") = py::none(),
           py::arg("isa") = "")
      .def("run", &Engine::run, py::arg("x"))
      .def("run_debug", &Engine::run_debug, py::arg("x"))
      .def("profile", &Engine::profile, py::arg("x"))
      .def("steps", &Engine::steps)
      .def("tensor_shapes", &Engine::tensor_shapes)
      .def_property_readonly("input_shape", &Engine::input_shape)
      .def_property_readonly("output_shape", &Engine::output_shape)
      .def_property_readonly("isa", &Engine::isa)
      .def_property_readonly("num_threads", &Engine::num_threads)
      .def_property_readonly("arena_floats_per_sample", &Engine::arena_floats_per_sample);
  m.def("available_isas", &available_isas, "ISAs this build and CPU can run, best first");
  m.def("op_types", &op_types, "The op types the engine runs (sorted)");
  m.def("all_isas", &all_isas, "every ISA name the engine knows (isa=, IRNET_ISA), best first");
}
