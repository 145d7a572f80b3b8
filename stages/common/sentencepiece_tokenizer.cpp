#include "stages/common/sentencepiece_tokenizer.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include "pipeline/error.hpp"

namespace lvmflow {

namespace fs = std::filesystem;

struct SentencePieceTokenizer::Api {
  void* (*load)(const char*, char*, int);
  void (*free)(void*);
  int (*encode)(void*, const char*, int, int*, int);
  int (*decode)(void*, const int*, int, char*, int);
  int (*id_to_piece)(void*, int, char*, int);
  int (*piece_to_id)(void*, const char*);
  int (*piece_size)(void*);
  int (*eos_id)(void*);
  int (*pad_id)(void*);
  int (*unk_id)(void*);
};

namespace {

constexpr const char* kShimName = "liblvmflow_sentencepiece_shim.so";

// AddressSanitizer refuses RTLD_DEEPBIND; sanitizer builds load the shim without it (and so
// must not use sentencepiece and libtorch in one process).
#if defined(__SANITIZE_ADDRESS__)
constexpr int kOpenFlags = RTLD_NOW | RTLD_LOCAL;
#else
constexpr int kOpenFlags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif

// The shim is looked for in $LVMFLOW_SENTENCEPIECE_SHIM, next to the running program, then
// where the build put it.
std::vector<fs::path> shim_candidates() {
  std::vector<fs::path> out;
  if (const char* env = std::getenv("LVMFLOW_SENTENCEPIECE_SHIM")) out.emplace_back(env);
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) out.push_back(exe.parent_path() / kShimName);
#ifdef LVMFLOW_SENTENCEPIECE_SHIM_PATH
  out.emplace_back(LVMFLOW_SENTENCEPIECE_SHIM_PATH);
#endif
  return out;
}

template <class F>
void bind(void* lib, const char* name, F& fn) {
  fn = reinterpret_cast<F>(::dlsym(lib, name));
  if (!fn) throw Error(kShimName, std::string("missing symbol ") + name, "rebuild lvmflow");
}

const SentencePieceTokenizer::Api& api() {
  static std::once_flag once;
  static SentencePieceTokenizer::Api table;
  static std::string failure;
  std::call_once(once, [] {
    std::string tried;
    void* lib = nullptr;
    for (const auto& p : shim_candidates()) {
      if (!fs::exists(p)) {
        tried += (tried.empty() ? "" : ", ") + p.string();
        continue;
      }
      lib = ::dlopen(p.c_str(), kOpenFlags);
      if (lib) break;
      tried += (tried.empty() ? "" : ", ") + p.string() + " (" + ::dlerror() + ")";
    }
    if (!lib) {
      failure = "cannot load the sentencepiece shim; tried " + tried;
      return;
    }
    try {
      bind(lib, "lvmflow_spm_load", table.load);
      bind(lib, "lvmflow_spm_free", table.free);
      bind(lib, "lvmflow_spm_encode", table.encode);
      bind(lib, "lvmflow_spm_decode", table.decode);
      bind(lib, "lvmflow_spm_id_to_piece", table.id_to_piece);
      bind(lib, "lvmflow_spm_piece_to_id", table.piece_to_id);
      bind(lib, "lvmflow_spm_piece_size", table.piece_size);
      bind(lib, "lvmflow_spm_eos_id", table.eos_id);
      bind(lib, "lvmflow_spm_pad_id", table.pad_id);
      bind(lib, "lvmflow_spm_unk_id", table.unk_id);
    } catch (const Error& e) {
      failure = e.what();
    }
  });
  if (!failure.empty())
    throw Error("sentencepiece", failure, "set LVMFLOW_SENTENCEPIECE_SHIM to the shim's path or rebuild lvmflow");
  return table;
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const fs::path& model) : api_(&api()) {
  if (!fs::is_regular_file(model))
    throw Error(model.string(), "SentencePiece model not found", "point the tokenizer at the model folder's spiece.model");
  char error[512] = {0};
  handle_ = api_->load(model.c_str(), error, sizeof error);
  if (!handle_)
    throw Error(model.string(), std::string("not a valid SentencePiece model: ") + error,
                "the file may be damaged; copy it again from the model folder");
}

SentencePieceTokenizer::~SentencePieceTokenizer() {
  if (handle_) api_->free(handle_);
}

std::vector<int> SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<int> ids(text.size() + 16);
  int n = api_->encode(handle_, text.data(), static_cast<int>(text.size()), ids.data(), static_cast<int>(ids.size()));
  if (n < 0) throw Error("sentencepiece", "could not tokenize text");
  if (n > static_cast<int>(ids.size())) {
    ids.resize(static_cast<std::size_t>(n));
    n = api_->encode(handle_, text.data(), static_cast<int>(text.size()), ids.data(), n);
  }
  ids.resize(static_cast<std::size_t>(n));
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int>& ids) const {
  std::string out(ids.size() * 16 + 64, '\0');
  int n = api_->decode(handle_, ids.data(), static_cast<int>(ids.size()), out.data(), static_cast<int>(out.size()));
  if (n < -1) {
    out.resize(static_cast<std::size_t>(-n));
    n = api_->decode(handle_, ids.data(), static_cast<int>(ids.size()), out.data(), static_cast<int>(out.size()));
  }
  if (n < 0) throw Error("sentencepiece", "could not decode ids");
  out.resize(static_cast<std::size_t>(n));
  return out;
}

int SentencePieceTokenizer::piece_size() const { return api_->piece_size(handle_); }
int SentencePieceTokenizer::piece_to_id(const std::string& piece) const { return api_->piece_to_id(handle_, piece.c_str()); }
std::string SentencePieceTokenizer::id_to_piece(int id) const {
  char buf[1024];
  int n = api_->id_to_piece(handle_, id, buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, static_cast<std::size_t>(n));
}
int SentencePieceTokenizer::eos_id() const { return api_->eos_id(handle_); }
int SentencePieceTokenizer::pad_id() const { return api_->pad_id(handle_); }
int SentencePieceTokenizer::unk_id() const { return api_->unk_id(handle_); }

}  // namespace lvmflow
