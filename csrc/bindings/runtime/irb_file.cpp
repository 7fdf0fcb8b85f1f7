#include "bindings/runtime/irb_file.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "ops/op.h"
#include "bindings/runtime/errors.h"
#include "bindings/runtime/json.h"

namespace irnet {

namespace {

using nlohmann::json;

const char* const kFormat = "irb";
const char* const kFormatVersion = "1";
constexpr uint64_t kMaxHeaderBytes = 64ull * 1024 * 1024;

// The engine's own op registry: a file is refused for an op type exactly when the engine could
// not run it (as irnet_infer/irb_validate.py does).
bool known_op_type(const std::string& type) {
  static const std::vector<std::string> types = op_types();
  return std::find(types.begin(), types.end(), type) != types.end();
}

struct DTypeInfo {
  DType dtype;
  size_t itemsize;
};
const std::map<std::string, DTypeInfo> kDTypes = {
    {"F32", {DType::F32, 4}}, {"U64", {DType::U64, 8}}, {"I8", {DType::I8, 1}}};

// Python's `type(v) is int` (not a bool) with lo <= v <= hi; hi >= 0. nlohmann reads every
// non-negative integer literal as unsigned.
bool is_int(const json& v) { return v.is_number_integer(); }
bool int_in(const json& v, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) return false;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    return u <= uint64_t(hi) && (lo <= 0 || u >= uint64_t(lo));
  }
  const int64_t x = v.get<int64_t>();
  return lo <= x && x <= hi;
}
// Only after int_in has checked v.
int64_t int_of(const json& v) { return v.is_number_unsigned() ? int64_t(v.get<uint64_t>()) : v.get<int64_t>(); }

// format.py's _finite_number: bools and ints of magnitude <= 2^53, or finite floats.
bool finite_number(const json& v) {
  if (v.is_boolean()) return true;
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= (uint64_t(1) << 53);
  if (v.is_number_integer()) {  // negative here (nlohmann reads the others as unsigned)
    const int64_t x = v.get<int64_t>();
    return x >= -(int64_t(1) << 53) && x <= (int64_t(1) << 53);
  }
  return v.is_number_float() && std::isfinite(v.get<double>());
}
double number_of(const json& v) { return v.is_boolean() ? (v.get<bool>() ? 1.0 : 0.0) : v.get<double>(); }

// Python's `a == b` for JSON values that may be numbers (1 == 1.0 == True).
bool py_equal_number(const json& v, int64_t x) {
  if (v.is_boolean() || v.is_number()) return number_of(v) == double(x);
  return false;
}

std::string short_repr(const json& v) {
  std::string s = v.dump();
  return s.size() > 80 ? s.substr(0, 80) : s;
}

std::string dims(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

// The body bytes and header entry of one tensor, checked like format.py's _read_tensors.
struct RawTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

std::vector<RawTensor> read_tensors(const json& header, uint64_t body_size, const std::string& name) {
  std::vector<RawTensor> out;
  for (const auto& [tname, info] : header.items()) {
    const std::string where = name + ": tensor '" + tname + "'";
    if (!info.is_object()) throw FormatError(where + ": header entry is not an object");
    auto d = info.find("dtype");
    const bool known = d != info.end() && d->is_string() && kDTypes.count(d->get<std::string>());
    if (!known)
      throw FormatError(where + ": dtype " + (d == info.end() ? "None" : short_repr(*d)) +
                        " is not one of F32, U64, I8");
    const DTypeInfo dt = kDTypes.at(d->get<std::string>());
    auto shape = info.find("shape");
    auto offsets = info.find("data_offsets");
    bool shape_ok = shape != info.end() && shape->is_array();
    if (shape_ok)
      for (const json& s : *shape) shape_ok = shape_ok && int_in(s, 0, (int64_t(1) << 31) - 1);
    if (!shape_ok) throw FormatError(where + ": shape is not a list of sizes");
    bool offsets_ok = offsets != info.end() && offsets->is_array() && offsets->size() == 2 &&
                      is_int((*offsets)[0]) && is_int((*offsets)[1]);
    uint64_t begin = 0, end = 0;
    if (offsets_ok) {
      const json &b = (*offsets)[0], &e = (*offsets)[1];
      offsets_ok = int_in(b, 0, INT64_MAX) && int_in(e, 0, INT64_MAX);
      if (offsets_ok) {
        begin = uint64_t(int_of(b));
        end = uint64_t(int_of(e));
        offsets_ok = begin <= end && end <= body_size;
      }
    }
    if (!offsets_ok) throw FormatError(where + ": data_offsets are out of the file (truncated?)");
    RawTensor t{tname, dt.dtype, {}, begin, end};
    // Each size is < 2^31, so a product past the file's size is refused before it can wrap.
    uint64_t bytes = dt.itemsize;
    bool fits = true;
    for (const json& s : *shape) {
      const int64_t v = int_of(s);
      t.shape.push_back(v);
      if (v == 0) bytes = 0;
      else if (fits && bytes > (uint64_t(1) << 62) / uint64_t(v)) fits = false;
      else bytes *= uint64_t(v);
    }
    if (bytes == 0) fits = true;
    if (!fits || bytes != end - begin)
      throw FormatError(where + ": shape " + dims(t.shape) + " needs " + (fits ? std::to_string(bytes) : "too many") +
                        " bytes, the file gives " + std::to_string(end - begin));
    out.push_back(std::move(t));
  }
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> spans;
  for (const RawTensor& t : out) spans.emplace_back(t.begin, t.end, t.name);
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    if (std::get<0>(spans[i]) < std::get<1>(spans[i - 1]))
      throw FormatError(name + ": tensors '" + std::get<2>(spans[i - 1]) + "' and '" + std::get<2>(spans[i]) +
                        "' overlap in the file");
  return out;
}

// format.py's content_hash: SHA-256 over name, dtype name, json.dumps(shape) and bytes of every
// tensor in sorted name order (std::map orders UTF-8 bytes as Python orders code points).
std::string content_hash(const std::map<std::string, const RawTensor*>& sorted, const char* body) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx) throw std::bad_alloc();
  auto update = [&](const void* p, size_t n) { EVP_DigestUpdate(ctx, p, n); };
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (const auto& [tname, t] : sorted) {
    const std::string dt = dtype_name(t->dtype);
    const std::string shape = dims(t->shape);  // json.dumps([1, 2]) == "[1, 2]"
    update(tname.data(), tname.size());
    update(dt.data(), dt.size());
    update(shape.data(), shape.size());
    update(body + t->begin, size_t(t->end - t->begin));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

json meta_json(const json& meta, const char* key, const std::string& name, json::value_t kind,
               const char* kind_name) {
  const std::string what = name + ": metadata '" + key + "'";
  json v = parse_json(meta[key].get<std::string>(), what);
  if (v.type() != kind) throw FormatError(what + " must be a JSON " + kind_name);
  return v;
}

// format.py's validate (structure) followed by the bindings' conversion (types of names).
GraphDesc graph_desc(const json& g, const std::map<std::string, HostTensor>& tensors, const std::string& name) {
  auto bad = [&](const std::string& msg) { return FormatError(name + ": " + msg); };
  for (const char* key : {"inputs", "outputs", "ops"})
    if (!g.contains(key) || !g[key].is_array()) throw bad(std::string("graph '") + key + "' must be a list");
  const json& inputs = g["inputs"];
  if (inputs.size() != 1 || !inputs[0].is_object()) throw bad("graph must have exactly one input object");
  const json& inp = inputs[0];
  const bool shape_ok = inp.contains("name") && inp["name"].is_string() && inp.contains("shape") &&
                        inp["shape"].is_array() && inp["shape"].size() == 3 &&
                        std::all_of(inp["shape"].begin(), inp["shape"].end(),
                                    [](const json& d) { return int_in(d, 1, int64_t(1) << 20); });
  if (!shape_ok) throw bad("graph input needs a name and a shape [C, H, W] of sizes in 1..2^20");
  GraphDesc desc;
  desc.input_name = inp["name"].get<std::string>();
  for (const json& d : inp["shape"]) desc.input_shape.push_back(int_of(d));
  if (desc.input_shape[0] * desc.input_shape[1] * desc.input_shape[2] > (int64_t(1) << 31))
    throw bad("graph input shape " + dims(desc.input_shape) + " has more than 2^31 elements");
  const json& outputs = g["outputs"];
  if (outputs.size() != 1 || !outputs[0].is_string()) throw bad("graph must have exactly one output name");
  desc.output_name = outputs[0].get<std::string>();

  std::set<std::string> defined = {desc.input_name};
  std::map<std::string, std::string> used;
  size_t i = 0;
  for (const json& op : g["ops"]) {
    const size_t index = i++;
    if (!op.is_object()) throw bad("graph op #" + std::to_string(index) + " is not an object");
    const std::string where = "op #" + std::to_string(index) + " '" +
                              (op.contains("name") && op["name"].is_string() ? op["name"].get<std::string>() : "") + "'";
    if (!op.contains("type") || !op["type"].is_string() || !known_op_type(op["type"].get<std::string>()))
      throw bad(where + ": unknown op type " + (op.contains("type") ? short_repr(op["type"]) : "None"));
    const json ins = op.value("inputs", json()), outs = op.value("outputs", json());
    if (!ins.is_array() || !std::all_of(ins.begin(), ins.end(), [](const json& t) { return t.is_string(); }))
      throw bad(where + ": inputs must be a list of names");
    if (!outs.is_array() || outs.size() != 1 || !outs[0].is_string())
      throw bad(where + ": must have exactly one output name");
    for (const json& t : ins)
      if (!defined.count(t.get<std::string>()))
        throw bad(where + ": input '" + t.get<std::string>() + "' is not defined by an earlier op "
                  "(undefined or cyclic reference)");
    const std::string out = outs[0].get<std::string>();
    if (defined.count(out)) throw bad(where + ": output '" + out + "' is defined twice");
    defined.insert(out);

    OpDesc d;
    d.type = op["type"].get<std::string>();
    if (op.contains("name") && !op["name"].is_string()) throw bad("graph op #" + std::to_string(index) + " name must be a string");
    d.name = op.contains("name") ? op["name"].get<std::string>() : "graph op #" + std::to_string(index);
    for (const json& t : ins) d.inputs.push_back(t.get<std::string>());
    d.outputs.push_back(out);
    const json attrs = op.value("attrs", json::object());
    if (!attrs.is_object()) throw bad(where + ": attrs must be an object");
    for (const auto& [key, value] : attrs.items()) {
      const json values = value.is_array() ? value : json::array({value});
      if (!std::all_of(values.begin(), values.end(), finite_number))
        throw bad(where + ": attribute '" + key + "' must be a finite number or a list of them, got " + short_repr(value));
      std::vector<double>& v = d.attrs[key];
      for (const json& x : values) v.push_back(number_of(x));
    }
    const json params = op.value("params", json::object());
    if (!params.is_object()) throw bad(where + ": params must be an object");
    for (const auto& [role, tname] : params.items()) {
      if (!tname.is_string() || !tensors.count(tname.get<std::string>()))
        throw bad(where + ": parameter '" + role + "' names tensor " + short_repr(tname) + ", which is not in the file");
      const std::string t = tname.get<std::string>();
      if (used.count(t)) throw bad(where + ": tensor '" + t + "' is also used by " + used[t]);
      used[t] = where;
      const HostTensor& h = tensors.at(t);
      if (h.dtype == DType::F32) {
        const float* f = h.data<float>();
        for (int64_t k = 0; k < h.numel(); ++k)
          if (!std::isfinite(f[k])) throw bad(where + ": tensor '" + t + "' has non-finite values");
      }
      d.params[role] = t;
    }
    desc.ops.push_back(std::move(d));
  }
  if (!defined.count(desc.output_name) || desc.output_name == desc.input_name)
    throw bad("graph output '" + desc.output_name + "' is not produced by any op");
  for (const auto& [tname, t] : tensors)
    if (!used.count(tname)) throw bad("tensors not used by any op: '" + tname + "'");
  return desc;
}

void validate_preprocess(const json& pre, const std::vector<int64_t>& shape, const std::string& name) {
  auto bad = [&](const std::string& msg) { return FormatError(name + ": " + msg); };
  const json size = pre.value("input_size", json());
  bool same = size.is_array() && size.size() == shape.size();
  for (size_t i = 0; same && i < shape.size(); ++i) same = py_equal_number(size[i], shape[i]);
  if (!same) throw bad("preprocess input_size " + short_repr(size) + " must equal the graph input shape " + dims(shape));
  for (const char* key : {"mean", "std"}) {
    if (!pre.contains(key)) continue;
    const json& v = pre[key];
    const bool ok = v.is_array() && v.size() == size_t(shape[0]) &&
                    std::all_of(v.begin(), v.end(), [](const json& x) { return finite_number(x) && !x.is_boolean(); });
    if (!ok) throw bad(std::string("preprocess '") + key + "' must be a list of " + std::to_string(shape[0]) + " finite numbers");
  }
  if (pre.contains("std"))
    for (const json& x : pre["std"])
      if (number_of(x) == 0) throw bad("preprocess 'std' must not contain 0");
  if (pre.contains("scale") && (!finite_number(pre["scale"]) || pre["scale"].is_boolean()))
    throw bad("preprocess 'scale' must be a finite number");
  if (pre.contains("resize") && !pre["resize"].is_null() && !int_in(pre["resize"], 1, 65536))
    throw bad("preprocess 'resize' must be an integer in 1..65536, got " + short_repr(pre["resize"]));
  const json order = pre.value("channel_order", json("RGB"));
  if (order != json("RGB") && order != json("BGR")) throw bad("preprocess 'channel_order' must be 'RGB' or 'BGR'");
}

}  // namespace

IrbFile read_irb(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    throw IoError(path + ": " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw IoError("'" + path + "' is a directory, not an .irb model file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(path + ": " + std::strerror(errno));
  const std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw IoError(path + ": read error");
  return parse_irb(data, path);
}

IrbFile parse_irb(const std::string& data, const std::string& name) {
  if (data.size() < 8)
    throw FormatError(name + ": not a safetensors/.irb file (only " + std::to_string(data.size()) + " bytes)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | uint8_t(data[size_t(i)]);
  if (header_len > kMaxHeaderBytes || 8 + header_len > data.size())
    throw FormatError(name + ": not a safetensors/.irb file, or truncated (header claims " + std::to_string(header_len) +
                      " bytes, file has " + std::to_string(data.size()) + ")");
  json header = parse_json(data.substr(8, header_len), name + ": safetensors header");
  if (!header.is_object()) throw FormatError(name + ": safetensors header is not a JSON object");
  json meta = header.contains("__metadata__") ? header["__metadata__"] : json();
  header.erase("__metadata__");
  bool meta_ok = meta.is_object();
  if (meta_ok)
    for (const auto& [k, v] : meta.items()) meta_ok = meta_ok && v.is_string();
  if (!meta_ok) throw FormatError(name + ": no irnet-infer metadata (is this an .irb file?)");
  if (meta.value("format", json()) != json(kFormat))
    throw FormatError(name + ": metadata 'format' is " + short_repr(meta.value("format", json())) + ", expected 'irb'");
  if (meta.value("format_version", json()) != json(kFormatVersion))
    throw FormatError(name + ": format_version " + short_repr(meta.value("format_version", json())) +
                      " is not supported; this irnet-run reads version " + kFormatVersion);
  for (const char* key : {"graph", "preprocess", "content_hash"})
    if (!meta.contains(key)) throw FormatError(name + ": metadata key '" + key + "' is missing");

  const char* body = data.data() + 8 + header_len;
  const std::vector<RawTensor> raw = read_tensors(header, data.size() - 8 - header_len, name);
  std::map<std::string, const RawTensor*> sorted;
  for (const RawTensor& t : raw) sorted[t.name] = &t;
  if (content_hash(sorted, body) != meta["content_hash"].get<std::string>())
    throw FormatError(name + ": content hash mismatch: the tensors were changed or corrupted");

  const json graph = meta_json(meta, "graph", name, json::value_t::object, "dict");
  IrbFile f;
  f.preprocess = meta_json(meta, "preprocess", name, json::value_t::object, "dict");
  const json classes = meta.contains("classes") ? meta_json(meta, "classes", name, json::value_t::array, "list") : json();
  f.producer = meta.contains("producer") ? meta_json(meta, "producer", name, json::value_t::object, "dict") : json::object();

  std::map<std::string, HostTensor> tensors;
  for (const RawTensor& t : raw) {
    HostTensor h;
    h.dtype = t.dtype;
    h.shape = t.shape;
    h.assign(body + t.begin, size_t(t.end - t.begin));
    tensors[t.name] = std::move(h);
  }
  f.graph = graph_desc(graph, tensors, name);
  f.graph.tensors = std::move(tensors);
  if (!classes.is_null()) {
    f.classes.emplace();
    for (const json& c : classes) {
      if (!c.is_string()) throw FormatError(name + ": classes must be a list of strings");
      f.classes->push_back(c.get<std::string>());
    }
  }
  validate_preprocess(f.preprocess, f.graph.input_shape, name);
  return f;
}

}  // namespace irnet
