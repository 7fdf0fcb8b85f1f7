#include "model/desc.h"

#include <cmath>
#include <cstring>

namespace irnet {

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "F32";
    case DType::U64: return "U64";
    case DType::I8: return "I8";
  }
  return "?";
}

void HostTensor::assign(const void* bytes, size_t count) {
  storage.resize(count);
  if (count) std::memcpy(storage.data(), bytes, count);
}

int64_t HostTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n = checked_mul(n, d, "tensor");
  return n;
}

std::vector<int64_t> OpDesc::ints_attr(const std::string& key, size_t count) const {
  auto it = attrs.find(key);
  check(it != attrs.end(), where(), ": missing attribute '", key, "'");
  const std::vector<double>& v = it->second;
  check(v.size() == count, where(), ": attribute '", key, "' must have ", count, " value(s), got ",
        v.size());
  std::vector<int64_t> out;
  for (double x : v) {
    // Sizes beyond 2^30 are never real models; refusing them keeps every product far from overflow.
    check(std::isfinite(x) && x == std::floor(x) && std::fabs(x) <= double(1 << 30), where(),
          ": attribute '", key, "' must be an integer of magnitude <= 2^30, got ", x);
    out.push_back(static_cast<int64_t>(x));
  }
  return out;
}

int64_t OpDesc::int_attr(const std::string& key) const { return ints_attr(key, 1)[0]; }

double OpDesc::float_attr(const std::string& key) const {
  auto it = attrs.find(key);
  check(it != attrs.end(), where(), ": missing attribute '", key, "'");
  check(it->second.size() == 1, where(), ": attribute '", key, "' must be one number");
  check(std::isfinite(it->second[0]), where(), ": attribute '", key, "' is not finite");
  // Float attributes are used as float: out of float range would be undefined on conversion.
  check(std::fabs(it->second[0]) <= double(std::numeric_limits<float>::max()), where(),
        ": attribute '", key, "' is out of float range");
  return it->second[0];
}

const HostTensor& GraphDesc::param(const OpDesc& op, const std::string& role, DType dtype,
                                   const std::vector<int64_t>& shape) const {
  auto p = op.params.find(role);
  check(p != op.params.end(), op.where(), ": missing parameter '", role, "'");
  auto t = tensors.find(p->second);
  check(t != tensors.end(), op.where(), ": parameter '", role, "' names tensor '", p->second,
        "', which is not in the file");
  const HostTensor& h = t->second;
  check(h.dtype == dtype, op.where(), ": tensor '", p->second, "' must be ", dtype_name(dtype),
        ", got ", dtype_name(h.dtype));
  bool ok = h.shape.size() == shape.size();
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || shape[i] == h.shape[i];
  if (!ok) {
    std::ostringstream want, got;
    for (int64_t d : shape) want << d << ",";
    for (int64_t d : h.shape) got << d << ",";
    fail(op.where(), ": tensor '", p->second, "' must have shape [", want.str(), "], got [",
         got.str(), "]");
  }
  if (dtype == DType::F32) {
    const float* f = h.data<float>();
    for (int64_t i = 0; i < h.numel(); ++i)
      check(std::isfinite(f[i]), op.where(), ": tensor '", p->second, "' has a non-finite value");
  }
  return h;
}

}  // namespace irnet
