// Reading an .irb model file (docs/FORMAT.md) without Python: the same checks, in the same
// order and with the same categories, as irnet_infer/format.py's read_irb + validate and the
// bindings' conversion to a GraphDesc. Every rule here mirrors one there; when one changes, so
// must the other (tests/test_irnet_run.py runs both over the fuzz corpus).
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "model/desc.h"

namespace irnet {

struct IrbFile {
  GraphDesc graph;
  nlohmann::json preprocess;  // a checked object
  nlohmann::json producer;    // an object ({} when absent)
  std::optional<std::vector<std::string>> classes;
};

// A missing or unreadable file raises IoError; bad contents FormatError naming the problem.
IrbFile read_irb(const std::string& path);
IrbFile parse_irb(const std::string& data, const std::string& name);

}  // namespace irnet
