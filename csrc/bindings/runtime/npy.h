// NumPy .npy files of float32 (little-endian, C order), the input and output of irnet-run.
// Only what np.save writes for such arrays is read; anything else is refused with a message.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace irnet {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// Raises IoError when the file cannot be read, Error (a ValueError) when it is not such an array.
NpyArray read_npy_f32(const std::string& path);
void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data);

}  // namespace irnet
