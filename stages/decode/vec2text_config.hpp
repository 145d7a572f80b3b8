#pragma once
// The fields of a vec2text checkpoint's config.json (an InversionConfig) that inference
// needs. Torch-free, so the stage can read it without the models.
#include <cstdint>
#include <filesystem>
#include <string>

namespace lvmflow {

struct Vec2TextConfig {
  std::string base_model;              // model_name_or_path, e.g. "t5-base"
  std::int64_t max_seq_length = 32;    // tokens the model was trained on (also for re-embedding)
  std::int64_t num_repeat_tokens = 16; // pseudo tokens per embedding
};

// Throws lvmflow::Error naming the file when it is missing or a field is out of range.
Vec2TextConfig read_vec2text_config(const std::filesystem::path& folder);

}  // namespace lvmflow
