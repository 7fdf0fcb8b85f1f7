// Op type name -> constructor. Adding an op is one line here plus its file.
#include <map>

#include "ops/op.h"

namespace irnet {

std::unique_ptr<Op> make_add(const OpDesc&);
std::unique_ptr<Op> make_avg_pool2d(const OpDesc&);
std::unique_ptr<Op> make_batch_norm(const OpDesc&);
std::unique_ptr<Op> make_bconv2d(const OpDesc&);
std::unique_ptr<Op> make_conv2d(const OpDesc&);
std::unique_ptr<Op> make_flatten(const OpDesc&);
std::unique_ptr<Op> make_global_avg_pool(const OpDesc&);
std::unique_ptr<Op> make_hardtanh(const OpDesc&);
std::unique_ptr<Op> make_linear(const OpDesc&);
std::unique_ptr<Op> make_log_softmax(const OpDesc&);
std::unique_ptr<Op> make_max_pool2d(const OpDesc&);
std::unique_ptr<Op> make_relu(const OpDesc&);
std::unique_ptr<Op> make_shortcut_a(const OpDesc&);

namespace {

using Factory = std::unique_ptr<Op> (*)(const OpDesc&);

const std::map<std::string, Factory>& factories() {
  static const std::map<std::string, Factory> table = {
      {"add", make_add},
      {"avg_pool2d", make_avg_pool2d},
      {"batch_norm", make_batch_norm},
      {"bconv2d", make_bconv2d},
      {"bwconv2d", make_conv2d},  // 1W/32A: the float conv with weights expanded at load
      {"conv2d", make_conv2d},
      {"flatten", make_flatten},
      {"global_avg_pool", make_global_avg_pool},
      {"hardtanh", make_hardtanh},
      {"linear", make_linear},
      {"log_softmax", make_log_softmax},
      {"max_pool2d", make_max_pool2d},
      {"relu", make_relu},
      {"shortcut_a", make_shortcut_a},
  };
  return table;
}

}  // namespace

std::unique_ptr<Op> create_op(const OpDesc& desc) {
  auto it = factories().find(desc.type);
  check(it != factories().end(), "op '", desc.name, "': unknown op type '", desc.type, "'");
  return it->second(desc);
}

std::vector<std::string> op_types() {
  std::vector<std::string> out;
  for (const auto& entry : factories()) out.push_back(entry.first);
  return out;
}

}  // namespace irnet
