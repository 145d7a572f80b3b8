#pragma once
// The T5 dimensions lvmflow reads: from a Hugging Face config.json (read_t5_config, GTR-T5) or
// off the tensors themselves (infer_t5_arch in t5_model.hpp, vec2text), checked on load.
#include <cstdint>
#include <filesystem>
#include <string>

namespace lvmflow {

struct T5Config {
  std::int64_t vocab_size = 0;
  std::int64_t d_model = 0;
  std::int64_t d_kv = 0;
  std::int64_t num_heads = 0;
  std::int64_t d_ff = 0;
  std::int64_t num_layers = 0;
  std::int64_t num_buckets = 32;     // relative_attention_num_buckets
  std::int64_t max_distance = 128;   // relative_attention_max_distance
  double layer_norm_eps = 1e-6;
  std::string feed_forward_proj;     // "relu" or "gated-gelu"
  bool gated = false;                // gated-gelu: wi_0 (GELU, tanh form) * wi_1

  std::int64_t inner_dim() const { return num_heads * d_kv; }
};

// Reads config.json; throws lvmflow::Error naming the file and the key that is missing or wrong.
T5Config read_t5_config(const std::filesystem::path& config_json);

}  // namespace lvmflow
