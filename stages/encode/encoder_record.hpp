#pragma once
// encoder.json: which encoder produced a vector set, written next to every vectors.npy so
// the pooling choice (sentence-transformers vs vec2text) travels with the vectors.
#include <cstddef>
#include <filesystem>

#include "stages/common/json.hpp"
#include "stages/encode/text_encoder.hpp"

namespace lvmflow {

Json encoder_record(const TextEncoder& encoder, const std::filesystem::path& model_dir, std::size_t rows);

}  // namespace lvmflow
