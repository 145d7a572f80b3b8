#pragma once
// SentencePiece tokenizer (spiece.model), loaded in isolation.
//
// Why not link libsentencepiece directly: Debian's libsentencepiece carries its own copy of
// protobuf-lite 3.14, while libtorch loads libprotobuf 3.21. Whichever copy the dynamic linker
// binds first serves both: libtorch then crashes at start-up, or sentencepiece aborts with a
// protobuf version mismatch when it loads a model. So sentencepiece is reached only through a
// small shim library (sentencepiece_shim.cpp) that we dlopen with RTLD_LOCAL | RTLD_DEEPBIND:
// the shim and libsentencepiece bind to sentencepiece's protobuf, libtorch keeps its own.
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lvmflow {

class SentencePieceTokenizer {
 public:
  // Throws lvmflow::Error naming the file if it is missing or not a SentencePiece model.
  explicit SentencePieceTokenizer(const std::filesystem::path& model);
  ~SentencePieceTokenizer();
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  // Thread-safe.
  std::vector<int> encode(std::string_view text) const;
  std::string decode(const std::vector<int>& ids) const;
  int piece_size() const;
  int piece_to_id(const std::string& piece) const;
  std::string id_to_piece(int id) const;
  int eos_id() const;
  int pad_id() const;
  int unk_id() const;

  struct Api;   // the shim's function table (sentencepiece_tokenizer.cpp)

 private:
  const Api* api_;
  void* handle_ = nullptr;
};

}  // namespace lvmflow
