#pragma once
// Content hashing: SHA-256 for cache keys and fingerprints (collisions must not happen in
// practice), FNV-1a for cheap record checksums. SHA-256 is OpenSSL's (SHA-NI/AVX code paths:
// inputs and model files are hashed at plan time, so its speed is the plan time of a big dump).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;   // OpenSSL's EVP_MD_CTX, kept out of this header

namespace lvmflow {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256& update(const void* data, std::size_t n);
  Sha256& update(std::string_view s) { return update(s.data(), s.size()); }
  // Adds a length-prefixed field, so ("ab","c") and ("a","bc") hash differently.
  Sha256& field(std::string_view s);
  std::string hex();   // finishes the hash; update/field/hex after it throw lvmflow::Error

 private:
  struct FreeContext {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, FreeContext> ctx_;
};

std::string sha256_hex(std::string_view data);
// SHA-256 of a file's bytes; throws lvmflow::Error if it cannot be read.
std::string sha256_file(const std::filesystem::path& path);
std::uint64_t fnv1a64(std::string_view data);

}  // namespace lvmflow
