#include "stages/encode/builtin_encoder.hpp"

#include <cctype>
#include <cmath>
#include <cstring>

#include "pipeline/hash.hpp"

namespace lvmflow {

namespace {

constexpr std::uint64_t kProjectionSeed = 0x6c766d666c6f7731ull;  // fixed: changing it changes every vector
constexpr float kPairWeight = 0.5f;  // word pairs add local order without drowning the words

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Adds weight * R[feature] to acc, where R is a fixed random ±1 matrix with one row per
// hashed feature. Rows are generated from the feature hash on the fly, so the "matrix" costs
// no memory and the projection is identical on every machine.
void add_feature(std::string_view feature, float weight, float* acc) {
  std::uint64_t state = fnv1a64(feature) ^ kProjectionSeed;
  for (std::size_t base = 0; base < BuiltinHashEncoder::kDim; base += 64) {
    std::uint64_t bits = splitmix64(state);
    for (std::size_t j = 0; j < 64; ++j) acc[base + j] += (bits >> j & 1) ? weight : -weight;
  }
}

}  // namespace

BuiltinHashEncoder::BuiltinHashEncoder(std::int64_t max_length)
    : max_words_(max_length),
      name_("builtin-hash-768, NOT GTR-T5"),
      fingerprint_(Sha256()
                       .field("builtin-hash-768 v1")
                       .field(std::to_string(kProjectionSeed))
                       .field(std::to_string(max_length))
                       .hex()) {}

std::vector<std::string> BuiltinHashEncoder::words(std::string_view text) const {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) out.push_back(std::move(cur));
    cur.clear();
  };
  for (unsigned char c : text) {
    if (std::isalnum(c) || c >= 0x80) {
      cur += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    } else {
      flush();
    }
    if (max_words_ > 0 && static_cast<std::int64_t>(out.size()) >= max_words_) break;
  }
  flush();
  if (max_words_ > 0 && static_cast<std::int64_t>(out.size()) > max_words_) out.resize(max_words_);
  return out;
}

std::size_t BuiltinHashEncoder::token_count(const std::string& text) const {
  return words(text).size();
}

void BuiltinHashEncoder::encode_one(std::string_view text, float* out) const {
  std::memset(out, 0, kDim * sizeof(float));
  const auto ws = words(text);
  if (ws.empty()) {
    add_feature("\x01<empty>", 1.0f, out);  // every text gets a unit vector, even ""
  }
  for (std::size_t i = 0; i < ws.size(); ++i) {
    add_feature("w:" + ws[i], 1.0f, out);
    if (i + 1 < ws.size()) add_feature("p:" + ws[i] + ' ' + ws[i + 1], kPairWeight, out);
  }
  double norm = 0;
  for (std::size_t j = 0; j < kDim; ++j) norm += double(out[j]) * out[j];
  if (norm == 0) return;  // only if features cancel exactly; never divide by zero
  const float inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (std::size_t j = 0; j < kDim; ++j) out[j] *= inv;
}

void BuiltinHashEncoder::encode(const std::vector<std::string>& texts, float* out) const {
  for (std::size_t i = 0; i < texts.size(); ++i) encode_one(texts[i], out + i * kDim);
}

}  // namespace lvmflow
