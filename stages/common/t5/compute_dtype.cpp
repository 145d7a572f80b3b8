#include "stages/common/t5/compute_dtype.hpp"

#include "pipeline/error.hpp"

namespace lvmflow {

const char* to_string(ComputeDType d) {
  switch (d) {
    case ComputeDType::Float32: return "float32";
    case ComputeDType::BFloat16: return "bfloat16";
    case ComputeDType::Int8Dynamic: return "int8";
  }
  return "?";
}

ComputeDType parse_compute_dtype(const std::string& text, const std::string& where) {
  if (text == "float32") return ComputeDType::Float32;
  if (text == "bfloat16") return ComputeDType::BFloat16;
  if (text == "int8") return ComputeDType::Int8Dynamic;
  throw Error(where, "unknown dtype '" + text + "'", "use 'float32' (default), 'bfloat16' or 'int8'");
}

}  // namespace lvmflow
