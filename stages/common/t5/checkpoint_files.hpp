#pragma once
// Which files of a Hugging Face model folder decide what the model computes, for stages that
// fingerprint them into their cache key (replacing weights in place must re-run the stage).
// Torch-free: the plan calls it without loading anything.
#include <filesystem>
#include <vector>

namespace lvmflow {

// Those present of: config.json, model.safetensors, pytorch_model.bin,
// pytorch_model.bin.index.json and its shards (pytorch_model-*.bin, sorted), spiece.model.
std::vector<std::filesystem::path> checkpoint_files(const std::filesystem::path& folder);

}  // namespace lvmflow
