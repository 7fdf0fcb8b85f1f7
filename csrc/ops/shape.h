// Per-sample shape of a float tensor inside the engine. Maps are stored NHWC, vectors [N, C].
#pragma once
#include <cstdint>
#include <string>

namespace irnet {

struct Shape {
  int64_t c = 0, h = 1, w = 1;
  bool spatial = false;  // a [C,H,W] map (stored H,W,C) rather than a [C] vector
  int64_t numel() const { return c * h * w; }
  bool operator==(const Shape& o) const {
    return c == o.c && h == o.h && w == o.w && spatial == o.spatial;
  }
  std::string str() const {
    return spatial ? "[" + std::to_string(c) + "," + std::to_string(h) + "," + std::to_string(w) + "]"
                   : "[" + std::to_string(c) + "]";
  }
};

}  // namespace irnet
