#include "stages/encode/vector_refs.hpp"

#include <cstring>
#include <filesystem>

namespace lvmflow {

namespace {
constexpr char kRefTag = 'R';   // a raw float vector never starts a value of this form's length
}

std::string vector_ref(const std::string& artifact_key, std::uint64_t row) {
  std::string ref(1, kRefTag);
  ref.append(reinterpret_cast<const char*>(&row), sizeof row);
  return ref + artifact_key;
}

bool VectorRefReader::read(const std::string& ref, std::size_t dim, float* out) {
  if (ref.size() <= 1 + sizeof(std::uint64_t) || ref[0] != kRefTag) return false;
  std::uint64_t row = 0;
  std::memcpy(&row, ref.data() + 1, sizeof row);
  const std::string key = ref.substr(1 + sizeof row);
  std::shared_ptr<const VectorFile> file;
  {
    std::lock_guard lock(mutex_);
    auto it = files_.find(key);
    if (it == files_.end()) {
      const auto dir = ctx_.committed_artifact(key);
      const auto path = dir / VectorFile::kFileName;
      std::error_code ec;
      if (!dir.empty() && std::filesystem::exists(path, ec)) {
        try {
          file = std::make_shared<const VectorFile>(path);
        } catch (const std::exception&) {
          file = nullptr;   // damaged: treat its rows as misses and encode them again
        }
      }
      it = files_.emplace(key, file).first;
    }
    file = it->second;
  }
  if (!file || file->dim() != dim || row >= file->rows()) return false;
  file->read_rows(static_cast<std::size_t>(row), 1, out);
  return true;
}

}  // namespace lvmflow
