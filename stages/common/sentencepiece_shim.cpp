// C interface over libsentencepiece, built as its own shared library and dlopen'ed with
// RTLD_DEEPBIND by sentencepiece_tokenizer.cpp (see the header there for why).
#include <sentencepiece_processor.h>

#include <cstring>
#include <string>
#include <vector>

namespace {
sentencepiece::SentencePieceProcessor* sp(void* h) { return static_cast<sentencepiece::SentencePieceProcessor*>(h); }

int copy_out(const std::string& s, char* out, int capacity) {
  if (static_cast<int>(s.size()) + 1 > capacity) return -static_cast<int>(s.size()) - 1;
  std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  return static_cast<int>(s.size());
}
}  // namespace

extern "C" {

__attribute__((visibility("default"))) void* lvmflow_spm_load(const char* path, char* error, int error_capacity) {
  auto* p = new sentencepiece::SentencePieceProcessor;
  auto status = p->Load(path);
  if (!status.ok()) {
    copy_out(status.ToString(), error, error_capacity);
    delete p;
    return nullptr;
  }
  return p;
}

__attribute__((visibility("default"))) void lvmflow_spm_free(void* h) { delete sp(h); }

// Returns the number of ids; when it exceeds `capacity`, nothing is written and the caller
// retries with a larger buffer.
__attribute__((visibility("default"))) int lvmflow_spm_encode(void* h, const char* text, int len, int* ids, int capacity) {
  std::vector<int> out;
  if (!sp(h)->Encode(std::string_view(text, static_cast<std::size_t>(len)), &out).ok()) return -1;
  if (static_cast<int>(out.size()) <= capacity) std::memcpy(ids, out.data(), out.size() * sizeof(int));
  return static_cast<int>(out.size());
}

__attribute__((visibility("default"))) int lvmflow_spm_decode(void* h, const int* ids, int n, char* out, int capacity) {
  std::string text;
  if (!sp(h)->Decode(std::vector<int>(ids, ids + n), &text).ok()) return -1;
  return copy_out(text, out, capacity);
}

__attribute__((visibility("default"))) int lvmflow_spm_id_to_piece(void* h, int id, char* out, int capacity) {
  return copy_out(sp(h)->IdToPiece(id), out, capacity);
}

__attribute__((visibility("default"))) int lvmflow_spm_piece_to_id(void* h, const char* piece) { return sp(h)->PieceToId(piece); }
__attribute__((visibility("default"))) int lvmflow_spm_piece_size(void* h) { return sp(h)->GetPieceSize(); }
__attribute__((visibility("default"))) int lvmflow_spm_eos_id(void* h) { return sp(h)->eos_id(); }
__attribute__((visibility("default"))) int lvmflow_spm_pad_id(void* h) { return sp(h)->pad_id(); }
__attribute__((visibility("default"))) int lvmflow_spm_unk_id(void* h) { return sp(h)->unk_id(); }

}  // extern "C"
