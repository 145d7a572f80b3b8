#pragma once
// The lvm.* stage types; each file registers one (lvm_stages.cpp calls them all), and the
// helpers more than one of them uses.
#include <string>
#include <vector>

#include "pipeline/stage.hpp"
#include "stages/lvm/fast_inference.hpp"
#include "stages/lvm/model_config.hpp"
#include "stages/lvm/window_data.hpp"

namespace lvmflow {

void add_lvm_train_stage(StageRegistry& registry);     // train_stage.cpp
void add_lvm_predict_stage(StageRegistry& registry);   // predict_stage.cpp
void add_lvm_eval_stage(StageRegistry& registry);      // eval_stage.cpp

// The `dtype` param of lvm.predict and lvm.eval: the weights inference runs on.
extern const ParamDoc kInferenceDTypeParam;

// Predictions of `model` for `rows` of `data`, [rows.size() x D], in chunks to bound memory.
std::vector<float> predict_rows(const FastLvm& model, const WindowData& data, const std::vector<std::size_t>& rows);

// Throws lvmflow::Error unless a model with `config` takes the vector width and context of `data`.
void check_model_fits(const ModelConfig& config, const WindowData& data, const std::string& where);

}  // namespace lvmflow
