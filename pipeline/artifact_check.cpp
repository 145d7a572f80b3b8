#include "pipeline/artifact_check.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

#include "pipeline/error.hpp"

namespace lvmflow {

namespace fs = std::filesystem;

std::string xxh3_file(const fs::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(file.string(), std::string("cannot read file: ") + std::strerror(errno));
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(), XXH3_freeState);
  XXH3_128bits_reset(state.get());
  std::vector<char> buffer(std::size_t(1) << 20);
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      throw Error(file.string(), std::string("cannot read file: ") + std::strerror(err));
    }
    if (n == 0) break;
    XXH3_128bits_update(state.get(), buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(state.get()));
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (unsigned char byte : canonical.digest) {
    hex += digits[byte >> 4];
    hex += digits[byte & 15];
  }
  return hex;
}

namespace {

// Regular files under `dir` by relative path, with their sizes.
std::map<std::string, std::int64_t> list_files(const fs::path& dir) {
  std::map<std::string, std::int64_t> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    files[it->path().lexically_relative(dir).generic_string()] = static_cast<std::int64_t>(it->file_size(ec));
  }
  return files;
}

}  // namespace

std::vector<ArtifactFile> checksum_files(const fs::path& dir) {
  std::vector<ArtifactFile> out;
  for (const auto& [path, size] : list_files(dir)) out.push_back({path, size, xxh3_file(dir / path)});
  return out;
}

std::vector<std::string> check_files(const fs::path& dir, const std::vector<ArtifactFile>& recorded,
                                     VerifyDepth depth) {
  std::vector<std::string> problems;
  if (!fs::is_directory(dir)) return {"folder " + dir.string() + " is missing"};
  auto present = list_files(dir);
  for (const auto& f : recorded) {
    auto it = present.find(f.path);
    if (it == present.end()) {
      problems.push_back(f.path + ": missing");
      continue;
    }
    const std::int64_t size = it->second;
    present.erase(it);
    if (size != f.size) {
      problems.push_back(f.path + ": " + std::to_string(size) + " bytes, " + std::to_string(f.size) + " recorded");
      continue;
    }
    bool hash = depth == VerifyDepth::Full || (depth == VerifyDepth::Quick && size <= kQuickHashBytes);
    if (!hash) continue;
    try {
      if (xxh3_file(dir / f.path) != f.xxh3) problems.push_back(f.path + ": content differs from what was committed");
    } catch (const Error& e) {
      problems.push_back(f.path + ": " + e.problem());
    }
  }
  // A stage may probe for optional files, so a file that was not committed is damage too.
  for (const auto& [path, size] : present) problems.push_back(path + ": not part of the committed output");
  return problems;
}

}  // namespace lvmflow
