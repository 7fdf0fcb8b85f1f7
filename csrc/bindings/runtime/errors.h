// The runtime's error categories, the same as the Python package's: a bad model file
// (irnet_infer.IrbFormatError), a bad input or argument (ValueError), a file that cannot be
// read or written at all (OSError). irnet-run names the category and exits with its own code.
#pragma once
#include <stdexcept>
#include <string>

#include "common.h"

namespace irnet {

class FormatError : public Error {
 public:
  using Error::Error;
};

class IoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace irnet
