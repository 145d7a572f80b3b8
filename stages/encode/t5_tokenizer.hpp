#pragma once
// SentencePiece tokenisation with T5's conventions: pad id 0, EOS id 1 appended to every
// text, truncation to max_length tokens including the EOS. Text is stripped of surrounding
// whitespace first, as sentence-transformers does.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace lvmflow {

class SentencePieceTokenizer;

class T5Tokenizer {
 public:
  static constexpr std::int64_t kPadId = 0;
  static constexpr std::int64_t kEosId = 1;

  // Throws lvmflow::Error naming spiece.model when it is missing or unreadable.
  explicit T5Tokenizer(const std::filesystem::path& spiece_model);
  ~T5Tokenizer();

  // Thread-safe (SentencePieceProcessor::Encode is const).
  std::vector<std::int64_t> encode(const std::string& text, std::int64_t max_length) const;
  std::int64_t vocab_size() const;

 private:
  std::unique_ptr<SentencePieceTokenizer> sp_;
};

}  // namespace lvmflow
