#include "bindings/runtime/npy.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "bindings/runtime/errors.h"

namespace irnet {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, ".npy '<f4' is read as host floats");

namespace {

// The header is a Python dict literal; np.save writes exactly
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// (keys in this order, a space after each colon and comma). Tokens are read strictly.
class HeaderReader {
 public:
  HeaderReader(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  void expect(const std::string& token) {
    skip_spaces();
    if (s_.compare(pos_, token.size(), token) != 0) bad("expected " + token);
    pos_ += token.size();
  }
  bool accept(const std::string& token) {
    skip_spaces();
    if (s_.compare(pos_, token.size(), token) != 0) return false;
    pos_ += token.size();
    return true;
  }
  std::string quoted() {
    expect("'");
    const size_t end = s_.find('\'', pos_);
    if (end == std::string::npos) bad("unterminated string");
    std::string out = s_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }
  int64_t size() {
    skip_spaces();
    int64_t v = 0;
    size_t digits = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9' && digits < 10) {
      v = v * 10 + (s_[pos_++] - '0');
      ++digits;
    }
    if (digits == 0 || (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9')) bad("a dimension is not a size below 10^10");
    return v;
  }
  void end() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n')) ++pos_;
    if (pos_ != s_.size()) bad("trailing characters");
  }
  [[noreturn]] void bad(const std::string& what) const {
    throw Error(path_ + ": not a float32 .npy file (header: " + what + ")");
  }

 private:
  void skip_spaces() {
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
  }
  const std::string& s_;
  const std::string& path_;
  size_t pos_ = 0;
};

std::string read_all(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) throw IoError(path + ": " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw IoError("'" + path + "' is a directory, not a .npy file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(path + ": " + std::strerror(errno));
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw IoError(path + ": read error");
  return data;
}

}  // namespace

NpyArray read_npy_f32(const std::string& path) {
  const std::string data = read_all(path);
  if (data.size() < 10 || data.compare(0, 6, "\x93NUMPY") != 0) throw Error(path + ": not a .npy file");
  const int major = uint8_t(data[6]);
  size_t header_len = 0, start = 0;
  if (major == 1) {
    header_len = uint8_t(data[8]) | size_t(uint8_t(data[9])) << 8;
    start = 10;
  } else if (major == 2 || major == 3) {
    if (data.size() < 12) throw Error(path + ": truncated .npy header");
    for (int i = 3; i >= 0; --i) header_len = header_len << 8 | uint8_t(data[8 + size_t(i)]);
    start = 12;
  } else {
    throw Error(path + ": .npy format version " + std::to_string(major) + " is not supported");
  }
  if (header_len > data.size() - start) throw Error(path + ": truncated .npy header");
  const std::string text = data.substr(start, header_len);
  HeaderReader h(text, path);
  NpyArray a;
  h.expect("{");
  bool descr = false, order = false, shape = false;
  while (!h.accept("}")) {
    const std::string key = h.quoted();
    h.expect(":");
    if (key == "descr" && !descr) {
      const std::string d = h.quoted();
      if (d != "<f4") h.bad("dtype '" + d + "' is not float32 ('<f4'): save the input as float32");
      descr = true;
    } else if (key == "fortran_order" && !order) {
      if (!h.accept("False")) h.bad("Fortran-order arrays are not read: save a C-contiguous array");
      order = true;
    } else if (key == "shape" && !shape) {
      h.expect("(");
      while (!h.accept(")")) {
        a.shape.push_back(h.size());
        if (!h.accept(",")) {
          h.expect(")");
          break;
        }
      }
      shape = true;
    } else {
      h.bad("unexpected key '" + key + "'");
    }
    if (!h.accept(",")) {
      h.expect("}");
      break;
    }
  }
  h.end();
  if (!descr || !order || !shape) h.bad("descr, fortran_order and shape are required");
  // A product past the floats the file holds stops growing, so it cannot wrap.
  const uint64_t available = (data.size() - start - header_len) / sizeof(float);
  uint64_t count = 1;
  bool zero = false, over = false;
  for (int64_t d : a.shape) {
    if (d == 0) zero = true;
    else if (over || count > available / uint64_t(d)) over = true;
    else count *= uint64_t(d);
  }
  if (zero) count = 0;
  if ((over && !zero) || count * sizeof(float) != data.size() - start - header_len)
    throw Error(path + ": the .npy data does not match its shape (truncated or extra bytes)");
  a.data.resize(size_t(count));
  if (count) std::memcpy(a.data.data(), data.data() + start + header_len, size_t(count) * sizeof(float));
  return a;
}

void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  std::ostringstream dict;
  dict << "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  uint64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    dict << shape[i] << (shape.size() == 1 || i + 1 < shape.size() ? "," : "") << (i + 1 < shape.size() ? " " : "");
    count *= uint64_t(shape[i]);
  }
  dict << "), }";
  std::string header = dict.str();
  // Data starts on a multiple of 64 bytes, the header ends with a newline (the format's rule).
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw IoError(path + ": " + std::strerror(errno));
  const char magic[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
  const uint16_t len = uint16_t(header.size());
  const char len_bytes[2] = {char(len & 0xff), char(len >> 8)};
  f.write(magic, 8).write(len_bytes, 2).write(header.data(), std::streamsize(header.size()));
  f.write(reinterpret_cast<const char*>(data), std::streamsize(count * sizeof(float)));
  f.close();
  if (!f) throw IoError(path + ": write error");
}

}  // namespace irnet
