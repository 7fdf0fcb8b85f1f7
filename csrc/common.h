// Small shared vocabulary of the engine: the error type and checked arithmetic.
#pragma once
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

namespace irnet {

// Every problem with what the engine is given (graph, tensors, inputs) is an Error; the
// bindings turn it into a Python ValueError, so no bad input reaches a kernel.
class Error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  std::ostringstream s;
  (s << ... << args);
  throw Error(s.str());
}

template <typename... Args>
void check(bool ok, const Args&... args) {
  if (!ok) fail(args...);
}

// Sizes come from files: every product is checked so that a hostile shape cannot wrap around.
inline int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  check(a >= 0 && b >= 0, what, ": negative size");
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) fail(what, ": size overflows");
  return a * b;
}

}  // namespace irnet
