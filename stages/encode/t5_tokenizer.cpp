#include "stages/encode/t5_tokenizer.hpp"

#include "pipeline/error.hpp"
#include "stages/common/sentencepiece_tokenizer.hpp"

namespace lvmflow {

T5Tokenizer::T5Tokenizer(const std::filesystem::path& spiece_model) {
  const std::string where = spiece_model.string();
  if (!std::filesystem::exists(spiece_model))
    throw Error(where, "model folder has no spiece.model (the SentencePiece tokenizer)",
                "copy spiece.model from the published model folder");
  sp_ = std::make_unique<SentencePieceTokenizer>(spiece_model);
  if (sp_->eos_id() != kEosId || sp_->pad_id() != kPadId)
    throw Error(where, "tokenizer has eos id " + std::to_string(sp_->eos_id()) + " and pad id " +
                           std::to_string(sp_->pad_id()) + "; T5 uses eos 1, pad 0",
                "use the spiece.model published with the T5 model");
}

T5Tokenizer::~T5Tokenizer() = default;

std::vector<std::int64_t> T5Tokenizer::encode(const std::string& text, std::int64_t max_length) const {
  const char* ws = " \t\n\r\f\v";
  const auto first = text.find_first_not_of(ws);
  std::string stripped = first == std::string::npos
                             ? std::string()
                             : text.substr(first, text.find_last_not_of(ws) - first + 1);
  const std::vector<int> pieces = sp_->encode(stripped);
  const std::size_t keep =
      max_length > 1 ? std::min(pieces.size(), static_cast<std::size_t>(max_length - 1)) : 0;
  std::vector<std::int64_t> ids(pieces.begin(), pieces.begin() + static_cast<std::ptrdiff_t>(keep));
  ids.push_back(kEosId);
  return ids;
}

std::int64_t T5Tokenizer::vocab_size() const { return sp_->piece_size(); }

}  // namespace lvmflow
