#pragma once
// The one loader of Hugging Face checkpoint folders for every T5 in lvmflow (GTR-T5 in
// encode.gtr_t5, the vec2text models in decode.vec2text): config.json plus one of
//   model.safetensors | pytorch_model.bin | pytorch_model.bin.index.json + its shards
// (pytorch_model-0000x-of-0000y.bin). Answers "which names, which shape" too, which vec2text
// needs to read the T5 architecture off the tensors (its config.json only names the base
// model). Torch translation units only.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace lvmflow {

class CheckpointTensors {
 public:
  // Reads every tensor of the folder (float types only, converted to float32). Throws
  // lvmflow::Error naming the folder when no weight file is there, and the file for a damaged
  // shard or an index entry pointing at a missing shard.
  static CheckpointTensors open(const std::filesystem::path& folder);

  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // Shape of a present tensor (empty when absent).
  std::vector<std::int64_t> shape(const std::string& name) const;
  // The tensor checked against `expected`; a missing or mis-shaped tensor is an lvmflow::Error
  // naming the tensor, both shapes and the file it came from.
  at::Tensor get(const std::string& name, const std::vector<std::int64_t>& expected) const;
  // Names starting with `prefix`, sorted.
  std::vector<std::string> names_with_prefix(const std::string& prefix) const;

  const std::filesystem::path& folder() const { return folder_; }
  // What was read: "model.safetensors", "pytorch_model.bin" or "pytorch_model.bin.index.json (2 shards)".
  const std::string& source() const { return source_; }
  // Every weight file read, the shard index included (for fingerprints that must change
  // when a file does).
  const std::vector<std::filesystem::path>& files() const { return files_; }

 private:
  struct Entry {
    at::Tensor tensor;
    std::string file;
  };
  std::filesystem::path folder_;
  std::string source_;
  std::vector<std::filesystem::path> files_;
  std::map<std::string, Entry> tensors_;
};

std::string shape_string(const std::vector<std::int64_t>& shape);

}  // namespace lvmflow
