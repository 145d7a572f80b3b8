#include "stages/common/t5/checkpoint_files.hpp"

#include <algorithm>
#include <string>

namespace lvmflow {

namespace fs = std::filesystem;

std::vector<fs::path> checkpoint_files(const fs::path& folder) {
  std::vector<fs::path> files;
  auto add = [&](const fs::path& p) {
    if (fs::is_regular_file(p)) files.push_back(p);
  };
  add(folder / "config.json");
  add(folder / "model.safetensors");
  add(folder / "pytorch_model.bin");
  if (fs::is_regular_file(folder / "pytorch_model.bin.index.json")) {
    add(folder / "pytorch_model.bin.index.json");
    std::vector<fs::path> shards;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(folder, ec)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && name.starts_with("pytorch_model-") && name.ends_with(".bin")) shards.push_back(e.path());
    }
    std::sort(shards.begin(), shards.end());
    files.insert(files.end(), shards.begin(), shards.end());
  }
  add(folder / "spiece.model");
  return files;
}

}  // namespace lvmflow
