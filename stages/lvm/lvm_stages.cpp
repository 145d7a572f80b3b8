#include "stages/lvm/lvm_stages.hpp"

#include <algorithm>
#include <cstring>

#include "pipeline/error.hpp"
#include "stages/lvm/trainer.hpp"

namespace lvmflow {

const ParamDoc kInferenceDTypeParam{
    "dtype", ParamType::String, "float32",
    "weights for inference: float32, bfloat16, or int8 (per-row scales; activations quantised per row). "
    "int8 is the fastest at batch 1, bfloat16 from batch 32; lvm.eval reports their val cosine change against "
    "float32 (docs/stages/lvm.md)"};

// Predictions of `model` for `rows` of `data`, [rows.size() x D], in chunks to bound memory.
std::vector<float> predict_rows(const FastLvm& model, const WindowData& data, const std::vector<std::size_t>& rows) {
  c10::InferenceMode inference;
  std::vector<float> out(rows.size() * data.dim);
  constexpr std::size_t kChunk = 256;
  for (std::size_t begin = 0; begin < rows.size(); begin += kChunk) {
    const std::size_t end = std::min(rows.size(), begin + kChunk);
    torch::Tensor contexts, targets;
    gather_windows(data, rows, begin, end, &contexts, &targets);
    auto pred = model.forward(contexts).contiguous();
    std::memcpy(out.data() + begin * data.dim, pred.data_ptr<float>(), sizeof(float) * pred.numel());
  }
  return out;
}

void check_model_fits(const ModelConfig& config, const WindowData& data, const std::string& where) {
  if (std::size_t(config.input_dim) != data.dim)
    throw Error(where, "model '" + config.arch + "' takes " + std::to_string(config.input_dim) +
                           "-D vectors, the windows hold " + std::to_string(data.dim) + "-D vectors",
                "train the model on windows from the same encoder");
  if (std::size_t(config.context) != data.context)
    throw Error(where, "model '" + config.arch + "' was trained on " + std::to_string(config.context) +
                           " context vectors, the windows have " + std::to_string(data.context),
                "use the same `context:` in seq.window for training and prediction");
}

void register_lvm_stages(StageRegistry& registry) {
  add_lvm_train_stage(registry);
  add_lvm_predict_stage(registry);
  add_lvm_eval_stage(registry);
}

}  // namespace lvmflow
