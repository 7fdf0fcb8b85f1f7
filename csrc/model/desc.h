// Plain description of a model as the file states it: ops, attributes, parameter tensors.
// The layer between the kernels and the ops (it includes only base headers): the bindings fill
// it from Python objects, irnet-run from the file; nothing here is trusted until the ops and
// the plan check it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common.h"

namespace irnet {

enum class DType { F32, U64, I8 };
const char* dtype_name(DType d);

// A parameter tensor as read from the file (owned copy). The storage is raw bytes, copied in
// once (assign) and read only as the tensor's own dtype (data<T>), so no memory is read as a
// type other than the one it holds (strict aliasing; operator new aligns it for any dtype).
struct HostTensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<std::byte> storage;
  void assign(const void* bytes, size_t count);
  int64_t numel() const;
  template <typename T>
  const T* data() const { return reinterpret_cast<const T*>(storage.data()); }
};

struct OpDesc {
  std::string type;
  std::string name;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::map<std::string, std::vector<double>> attrs;  // numbers and bools; scalars are 1-long
  std::map<std::string, std::string> params;         // role -> tensor name

  // Attribute readers that fail with the op and attribute named.
  int64_t int_attr(const std::string& key) const;
  std::vector<int64_t> ints_attr(const std::string& key, size_t count) const;
  double float_attr(const std::string& key) const;
  bool has_param(const std::string& role) const { return params.count(role) != 0; }
  std::string where() const { return "op '" + name + "' (" + type + ")"; }
};

struct GraphDesc {
  std::string input_name;
  std::vector<int64_t> input_shape;  // per sample: [C, H, W]
  std::string output_name;
  std::vector<OpDesc> ops;
  std::map<std::string, HostTensor> tensors;

  // The parameter of `op` in `role`, checked for dtype and shape (-1 in `shape` = any).
  const HostTensor& param(const OpDesc& op, const std::string& role, DType dtype,
                          const std::vector<int64_t>& shape) const;
};

}  // namespace irnet
