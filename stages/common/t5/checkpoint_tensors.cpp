#include "stages/common/t5/checkpoint_tensors.hpp"

#include <ATen/ATen.h>

#include <set>

#include "pipeline/error.hpp"
#include "stages/common/json.hpp"
#include "stages/common/safetensors.hpp"
#include "stages/common/t5/torch_checkpoint.hpp"

namespace lvmflow {

namespace fs = std::filesystem;

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

namespace {

at::Tensor to_float_tensor(const TensorView& t, const std::string& file) {
  at::ScalarType type;
  switch (t.dtype) {
    case DType::F32: type = at::kFloat; break;
    case DType::F16: type = at::kHalf; break;
    case DType::BF16: type = at::kBFloat16; break;
    case DType::F64: type = at::kDouble; break;
    default:
      throw Error(file, "tensor '" + t.name + "' has dtype " + to_string(t.dtype),
                  "model weights are floating point (F32, F16, BF16)");
  }
  // The copy detaches the weights from the file mapping, which closes with the reader.
  return at::from_blob(const_cast<std::uint8_t*>(t.data), t.shape, at::TensorOptions().dtype(type))
      .to(at::kFloat, /*non_blocking=*/false, /*copy=*/true);
}

}  // namespace

CheckpointTensors CheckpointTensors::open(const fs::path& folder) {
  CheckpointTensors c;
  c.folder_ = folder;
  auto add_bin = [&](const fs::path& file) {
    c.files_.push_back(file);
    for (auto& [name, tensor] : load_torch_state_dict(file)) {
      if (!tensor.is_floating_point()) continue;   // e.g. position ids buffers: never weights here
      c.tensors_[name] = Entry{tensor.to(at::kFloat).contiguous(), file.string()};
    }
  };
  if (fs::is_regular_file(folder / "model.safetensors")) {
    const fs::path file = folder / "model.safetensors";
    c.files_.push_back(file);
    SafetensorsFile st(file);
    for (const auto& [name, view] : st.tensors())
      c.tensors_[name] = Entry{to_float_tensor(view, file.string()), file.string()};
    c.source_ = "model.safetensors";
  } else if (fs::is_regular_file(folder / "pytorch_model.bin")) {
    add_bin(folder / "pytorch_model.bin");
    c.source_ = "pytorch_model.bin";
  } else if (fs::is_regular_file(folder / "pytorch_model.bin.index.json")) {
    const std::string index = (folder / "pytorch_model.bin.index.json").string();
    c.files_.push_back(index);
    const Json json = read_json_file(index);
    std::set<std::string> shards;
    for (const auto& [name, file] : json.at("weight_map", index).as_object(index + ": weight_map"))
      shards.insert(file.as_string(index + ": weight_map." + name));
    for (const std::string& shard : shards) {
      if (!fs::is_regular_file(folder / shard))
        throw Error(index, "lists shard '" + shard + "', which is not in " + folder.string(),
                    "copy every pytorch_model-*.bin shard of the published folder");
      add_bin(folder / shard);
    }
    c.source_ = "pytorch_model.bin.index.json (" + std::to_string(shards.size()) + " shards)";
  } else {
    throw Error((folder / "model.safetensors").string(),
                "no weights: none of model.safetensors, pytorch_model.bin, pytorch_model.bin.index.json is in " +
                    folder.string(),
                "copy the complete published model folder (config.json and its weight files)");
  }
  return c;
}

std::vector<std::int64_t> CheckpointTensors::shape(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) return {};
  return it->second.tensor.sizes().vec();
}

at::Tensor CheckpointTensors::get(const std::string& name, const std::vector<std::int64_t>& expected) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end())
    throw Error((folder_ / source_).string(), "tensor '" + name + "' is missing (expected shape " +
                                                  shape_string(expected) + ")",
                "the weights do not match config.json, or the folder holds another kind of model");
  const std::vector<std::int64_t> actual = it->second.tensor.sizes().vec();
  if (actual != expected)
    throw Error(it->second.file, "tensor '" + name + "' has shape " + shape_string(actual) + ", expected " +
                                     shape_string(expected),
                "the weights do not match the architecture read from the other tensors and config.json");
  return it->second.tensor;
}

std::vector<std::string> CheckpointTensors::names_with_prefix(const std::string& prefix) const {
  std::vector<std::string> out;
  for (auto it = tensors_.lower_bound(prefix); it != tensors_.end() && it->first.starts_with(prefix); ++it)
    out.push_back(it->first);
  return out;
}

}  // namespace lvmflow
