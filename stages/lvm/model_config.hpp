#pragma once
// Shape of an LVM: which architecture and its sizes. Torch-free so that configs can be read,
// written and checked without pulling libtorch headers into a translation unit.
#include <cstdint>
#include <string>
#include <vector>

#include "stages/common/json.hpp"

namespace lvmflow {

struct ModelConfig {
  std::string arch;            // lstm | gru | transformer | amn
  std::int64_t input_dim = 768;
  std::int64_t context = 5;    // N, only recorded (every architecture accepts any length)
  std::int64_t hidden = 0;     // lstm/gru/transformer: hidden width; amn: attention width
  std::int64_t layers = 0;     // recurrent / decoder layers (amn: unused)
  std::int64_t heads = 0;      // transformer attention heads
  std::int64_t ff = 0;         // transformer feed-forward width; amn: first MLP width
  double dropout = 0.0;

  Json to_json() const;
  static ModelConfig from_json(const Json& j, const std::string& where);
};

// The trainable architectures, in the order tables list them.
const std::vector<std::string>& model_architectures();
bool is_model_architecture(const std::string& arch);

// The configuration the issue table gives for `arch` (../shared/seeds/004): widths of 512
// (amn 256), 2 / 4 / 4 layers, dropout 0.2 / 0 / 0.1 / 0. `hidden` / `layers` > 0 override
// the width and depth (tests use tiny models). Throws lvmflow::Error for an unknown arch.
ModelConfig default_model_config(const std::string& arch, std::int64_t input_dim, std::int64_t context,
                                 std::int64_t hidden = 0, std::int64_t layers = 0);

}  // namespace lvmflow
