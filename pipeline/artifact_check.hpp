#pragma once
// Per-file checksums of committed artifacts: every regular file of an artifact folder is
// recorded at commit (path relative to the folder, size, XXH3-128 of its bytes) and checked
// again before the artifact is used. XXH3 is not a cryptographic hash: it detects damage
// (flipped bytes, truncation, a file emptied or replaced by mistake), not tampering.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lvmflow {

struct ArtifactFile {
  std::string path;          // relative to the artifact folder, '/'-separated
  std::int64_t size = 0;
  std::string xxh3;          // 32 hex digits (XXH3-128)
};

// How deep a check goes. Sizes: file list and sizes only (no reads). Quick: sizes, plus the
// content hash of files up to kQuickHashBytes (what the planner does before a stored output is
// used). Full: every byte of every file (`lvmflow verify`).
enum class VerifyDepth { Sizes, Quick, Full };
inline constexpr std::int64_t kQuickHashBytes = std::int64_t(64) << 20;

// XXH3-128 of a file's bytes as 32 hex digits; throws lvmflow::Error if it cannot be read.
std::string xxh3_file(const std::filesystem::path& file);
// Every regular file under `dir` (recursively; a hard link is a file like any other), sorted
// by path, with its size and content hash.
std::vector<ArtifactFile> checksum_files(const std::filesystem::path& dir);
// What differs between `dir` and the files recorded for it, one line per problem
// ("vectors.npy: 0 bytes, 4096 recorded"); empty when the folder is intact.
std::vector<std::string> check_files(const std::filesystem::path& dir, const std::vector<ArtifactFile>& recorded,
                                     VerifyDepth depth);

}  // namespace lvmflow
