#pragma once
// LVM checkpoints: model.safetensors (tensor names as in the PyTorch state_dict) plus
// model.json (architecture, sizes, context, encoder fingerprint, training metrics).
// Includes torch: only for the lvm family's torch translation units.
#include <filesystem>
#include <map>
#include <memory>

#include "stages/common/json.hpp"
#include "stages/lvm/lvm_models.hpp"

namespace lvmflow {

inline constexpr const char* kModelWeightsFile = "model.safetensors";
inline constexpr const char* kModelConfigFile = "model.json";

// Named tensors of a model (parameters, then buffers), contiguous float32 on the CPU.
std::map<std::string, torch::Tensor> model_state(const LvmModel& model);
// Copies `state` into the model's tensors; every tensor must be present with the same
// shape and nothing extra (strict, like load_state_dict). Throws lvmflow::Error naming `where`.
void load_model_state(LvmModel& model, const std::map<std::string, torch::Tensor>& state, const std::string& where);

// Writes model.safetensors and model.json into `dir`. `info` holds extra top-level JSON fields
// (metrics, training settings, encoder); the config goes under "model".
void save_checkpoint(const LvmModel& model, const Json& info, const std::filesystem::path& dir);

struct LoadedCheckpoint {
  std::shared_ptr<LvmModel> model;   // in eval mode
  Json info;                         // the whole model.json
};
// Loads a checkpoint folder written by save_checkpoint. Throws lvmflow::Error with the file
// and a fix when a file is missing or does not match the config.
LoadedCheckpoint load_checkpoint(const std::filesystem::path& dir);

}  // namespace lvmflow
