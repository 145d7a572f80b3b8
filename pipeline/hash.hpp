#pragma once
// Content hashing: SHA-256 for cache keys and fingerprints (collisions must not happen in
// practice), FNV-1a for cheap record checksums.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace lvmflow {

class Sha256 {
 public:
  Sha256();
  Sha256& update(const void* data, std::size_t n);
  Sha256& update(std::string_view s) { return update(s.data(), s.size()); }
  // Adds a length-prefixed field, so ("ab","c") and ("a","bc") hash differently.
  Sha256& field(std::string_view s);
  std::string hex();   // finishes the hash

 private:
  void block(const std::uint8_t* p);
  std::uint32_t h_[8];
  std::uint8_t buf_[64];
  std::size_t buf_len_ = 0;
  std::uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view data);
// SHA-256 of a file's bytes; throws lvmflow::Error if it cannot be read.
std::string sha256_file(const std::filesystem::path& path);
std::uint64_t fnv1a64(std::string_view data);

}  // namespace lvmflow
