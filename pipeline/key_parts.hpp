#pragma once
// The parts of a stage's cache key as stored in its committed artifact (key.json), so
// `lvmflow why` can compare a new plan with the parts that produced the stored output.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/plan.hpp"

namespace lvmflow {

inline constexpr const char* kKeyPartsFile = "key.json";

// {"stage": ..., "key": ..., "parts": [{"kind", "name", "value"}, ...]}
void write_key_parts(const std::filesystem::path& file, const PlannedStage& stage);
// nullopt when the file is absent (artifacts of lvmflow before key.json); throws
// lvmflow::Error naming the file when it is damaged.
std::optional<std::vector<KeyPart>> read_key_parts(const std::filesystem::path& file);

}  // namespace lvmflow
