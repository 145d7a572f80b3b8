#include "stages/lvm/checkpoint.hpp"

#include <cstring>

#include "pipeline/error.hpp"
#include "stages/common/safetensors.hpp"

namespace lvmflow {

std::map<std::string, torch::Tensor> model_state(const LvmModel& model) {
  std::map<std::string, torch::Tensor> state;
  for (const auto& item : model.named_parameters(true))
    state[item.key()] = item.value().detach().to(torch::kFloat32).contiguous();
  for (const auto& item : model.named_buffers(true))
    state[item.key()] = item.value().detach().to(torch::kFloat32).contiguous();
  return state;
}

void load_model_state(LvmModel& model, const std::map<std::string, torch::Tensor>& state, const std::string& where) {
  torch::NoGradGuard no_grad;
  std::size_t used = 0;
  auto copy_into = [&](const std::string& name, torch::Tensor& target) {
    auto it = state.find(name);
    if (it == state.end())
      throw Error(where, "tensor '" + name + "' is missing", "the checkpoint was written for another architecture or size");
    if (it->second.sizes() != target.sizes())
      throw Error(where, "tensor '" + name + "' has shape " + c10::str(it->second.sizes()) + ", the model expects " +
                             c10::str(target.sizes()),
                  "the checkpoint was written for another architecture or size");
    target.copy_(it->second);
    ++used;
  };
  for (auto& item : model.named_parameters(true)) copy_into(item.key(), item.value());
  for (auto& item : model.named_buffers(true)) copy_into(item.key(), item.value());
  if (used != state.size()) {
    auto expected = model.named_parameters(true);
    auto buffers = model.named_buffers(true);
    for (const auto& [name, tensor] : state)
      if (!expected.contains(name) && !buffers.contains(name))
        throw Error(where, "unexpected tensor '" + name + "'", "the checkpoint was written for another architecture");
  }
}

void save_checkpoint(const LvmModel& model, const Json& info, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  auto state = model_state(model);
  std::vector<TensorToWrite> tensors;
  for (const auto& [name, t] : state) {
    TensorToWrite w;
    w.name = name;
    w.dtype = DType::F32;
    w.shape.assign(t.sizes().begin(), t.sizes().end());
    w.data = t.data_ptr<float>();
    w.nbytes = static_cast<std::size_t>(t.numel()) * sizeof(float);
    tensors.push_back(std::move(w));
  }
  // "format": "pt" is what safetensors.torch writes; the config rides along for tools that
  // only see the weights file.
  write_safetensors(dir / kModelWeightsFile, tensors,
                    {{"format", "pt"}, {"lvmflow_model", model.config().to_json().dump()}});
  Json j = info.is_object() ? info : Json(Json::Object{});
  j["model"] = model.config().to_json();
  j["params"] = static_cast<std::int64_t>(model.parameter_count());
  j["weights"] = std::string(kModelWeightsFile);
  write_json_file((dir / kModelConfigFile).string(), j);
}

LoadedCheckpoint load_checkpoint(const std::filesystem::path& dir) {
  const auto json_path = dir / kModelConfigFile;
  const auto weights_path = dir / kModelWeightsFile;
  if (!std::filesystem::exists(json_path) || !std::filesystem::exists(weights_path))
    throw Error(dir.string(), "no LVM checkpoint here (expected model.json and model.safetensors)",
                "point this input at an lvm.train stage");
  LoadedCheckpoint out;
  out.info = read_json_file(json_path.string());
  ModelConfig config = ModelConfig::from_json(out.info.at("model", json_path.string()), json_path.string());
  out.model = make_model(config);
  SafetensorsFile file(weights_path);
  std::map<std::string, torch::Tensor> state;
  for (const auto& [name, view] : file.tensors()) {
    std::vector<float> values = view.to_float();
    state[name] = torch::from_blob(values.data(), view.shape, torch::kFloat32).clone();
  }
  load_model_state(*out.model, state, weights_path.string());
  out.model->eval();
  return out;
}

}  // namespace lvmflow
