#include "pipeline/hash.hpp"

#include <openssl/evp.h>

#include <fstream>

#include "pipeline/error.hpp"

namespace lvmflow {

void Sha256::FreeContext::operator()(evp_md_ctx_st* ctx) const { EVP_MD_CTX_free(ctx); }

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
    throw Error("sha256", "OpenSSL could not start a SHA-256 digest", "check the libssl installation (tools/setup.sh)");
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

Sha256& Sha256::update(const void* data, std::size_t n) {
  if (!ctx_ || EVP_DigestUpdate(ctx_.get(), data, n) != 1)
    throw Error("sha256", "update of a finished or moved-from digest", "start a new Sha256 for each hash");
  return *this;
}

Sha256& Sha256::field(std::string_view s) {
  std::uint64_t n = s.size();   // native (little-endian) length prefix, as cache keys always had
  update(&n, sizeof n);
  return update(s);
}

std::string Sha256::hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!ctx_ || EVP_DigestFinal_ex(ctx_.get(), digest, &len) != 1)
    throw Error("sha256", "hex() of a finished or moved-from digest", "start a new Sha256 for each hash");
  ctx_.reset();
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out += digits[digest[i] >> 4];
    out += digits[digest[i] & 0xf];
  }
  return out;
}

std::string sha256_hex(std::string_view data) { return Sha256().update(data).hex(); }

std::string sha256_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string(), "cannot read file", "check that the path exists and is readable");
  Sha256 h;
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof buf);
    h.update(buf, static_cast<std::size_t>(in.gcount()));
  }
  return h.hex();
}

std::uint64_t fnv1a64(std::string_view data) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace lvmflow
