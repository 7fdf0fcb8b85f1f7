#include "bindings/runtime/json.h"

#include <limits>
#include <set>
#include <vector>

#include "bindings/runtime/errors.h"

namespace irnet {

namespace {

constexpr size_t kMaxDepth = 900;

// The library's DOM builder with three hooks (integer literals, depth, duplicate keys, which
// the library would silently take last-wins where irnet_infer refuses them); sax_parse is a template over the handler type,
// so the hidden members below are the ones it calls.
class Builder : public nlohmann::detail::json_sax_dom_parser<nlohmann::json> {
  using Base = nlohmann::detail::json_sax_dom_parser<nlohmann::json>;

 public:
  Builder(nlohmann::json& root, const std::string& what) : Base(root, true), what_(what) {}

  bool number_float(double v, const std::string& text) {
    const bool integer_literal = text.find_first_of(".eE") == std::string::npos;
    return Base::number_float(integer_literal ? std::numeric_limits<double>::quiet_NaN() : v, text);
  }
  bool start_object(std::size_t n) {
    if (!enter()) return false;
    keys_.emplace_back();
    return Base::start_object(n);
  }
  bool key(std::string& k) {
    if (!keys_.back().insert(k).second)
      throw FormatError(what_ + " is not valid JSON (duplicate key '" + k.substr(0, 100) + "')");
    return Base::key(k);
  }
  bool start_array(std::size_t n) { return enter() && Base::start_array(n); }
  bool end_object() { --depth_; keys_.pop_back(); return Base::end_object(); }
  bool end_array() { --depth_; return Base::end_array(); }

 private:
  bool enter() {
    if (++depth_ > kMaxDepth) throw FormatError(what_ + " JSON is nested too deeply");
    return true;
  }
  std::string what_;
  size_t depth_ = 0;
  std::vector<std::set<std::string>> keys_;  // one set per open object
};

}  // namespace

nlohmann::json parse_json(const std::string& text, const std::string& what) {
  nlohmann::json root;
  Builder builder(root, what);
  try {
    nlohmann::json::sax_parse(text, &builder);
  } catch (const nlohmann::json::exception& e) {
    // The library quotes the token it stopped at, which may be long or not UTF-8: left out.
    std::string why = e.what();
    why = why.substr(0, why.find("; last read"));
    if (why.size() > 200) why.resize(200);
    throw FormatError(what + " is not valid JSON (" + why + ")");
  }
  return root;
}

}  // namespace irnet
