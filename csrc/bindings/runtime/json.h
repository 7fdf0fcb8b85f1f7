// JSON text -> nlohmann::json, with the two ways Python's json module (the reference reader)
// differs from nlohmann's defaults made explicit, so that both accept and refuse the same text:
// - An integer literal too large for 64 bits is a Python int that every check refuses (sizes,
//   attributes: |v| <= 2^53); nlohmann would turn it into a float that passes them. It becomes
//   NaN here, which every check refuses as well.
// - Python gives up on nesting deeper than its recursion limit (about 1000): so does this.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace irnet {

// Raises FormatError("<what> is not valid JSON (...)") or ("<what> JSON is nested too deeply").
nlohmann::json parse_json(const std::string& text, const std::string& what);

}  // namespace irnet
