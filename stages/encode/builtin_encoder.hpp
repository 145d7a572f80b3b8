#pragma once
// The built-in offline encoder used when no model folder is configured: hashed word and
// word-pair features through a fixed seeded random projection to 768-D, L2-normalised.
// Deterministic and dependency-free so the quickstart runs without downloads. It is NOT
// GTR-T5 and says so in its name; vectors from it are not comparable to GTR-T5 vectors.
#include <string>
#include <string_view>
#include <vector>

#include "stages/encode/text_encoder.hpp"

namespace lvmflow {

class BuiltinHashEncoder : public TextEncoder {
 public:
  static constexpr std::size_t kDim = 768;
  explicit BuiltinHashEncoder(std::int64_t max_length = 0);

  const std::string& name() const override { return name_; }
  const std::string& fingerprint() const override { return fingerprint_; }
  std::size_t dim() const override { return kDim; }
  Pooling pooling() const override { return Pooling::SentenceTransformers; }
  std::int64_t max_length() const override { return max_words_; }
  ComputeDType compute_dtype() const override { return ComputeDType::Float32; }
  bool is_builtin() const override { return true; }
  void encode(const std::vector<std::string>& texts, float* out) const override;
  std::size_t token_count(const std::string& text) const override;

  // Lower-cased words (runs of letters/digits; bytes >= 0x80 count as letters so UTF-8 words
  // stay whole), at most max_length of them when it is set.
  std::vector<std::string> words(std::string_view text) const;
  void encode_one(std::string_view text, float* out) const;

 private:
  std::int64_t max_words_;
  std::string name_, fingerprint_;
};

}  // namespace lvmflow
