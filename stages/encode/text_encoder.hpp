#pragma once
// A text -> vector encoder as the encode stage and `lvmflow encode` see it. Torch-free on
// purpose: the GTR-T5 implementation lives in its own translation units.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "stages/common/t5/compute_dtype.hpp"

namespace lvmflow {

// The two ways of turning T5 encoder states into one vector (see docs/stages/encode.md):
// sentence-transformers = masked mean -> Dense -> L2 normalise (what GTR-T5 users get);
// vec2text = masked mean of the encoder output only (the space vec2text was trained on).
enum class Pooling { SentenceTransformers, Vec2Text };
const char* to_string(Pooling p);
// Throws lvmflow::Error naming `where` for anything but the two names above.
Pooling parse_pooling(const std::string& text, const std::string& where);

struct EncoderOptions {
  std::filesystem::path model_dir;   // empty: the built-in hashed encoder (not GTR-T5)
  Pooling pooling = Pooling::SentenceTransformers;
  std::int64_t max_length = 0;       // tokens incl. EOS; 0: the model's own max_seq_length
  ComputeDType dtype = ComputeDType::Float32;
  std::int64_t max_batch_tokens = 8192;  // padded tokens per forward pass (memory bound)
};

class TextEncoder {
 public:
  virtual ~TextEncoder() = default;
  // Human-readable name; the built-in one says plainly that it is not GTR-T5.
  virtual const std::string& name() const = 0;
  // SHA-256 over everything that decides the output (weights, config, tokenizer, pooling
  // setup, max length, dtype). Used in item-cache keys and recorded in encoder.json.
  virtual const std::string& fingerprint() const = 0;
  virtual std::size_t dim() const = 0;
  virtual Pooling pooling() const = 0;
  virtual std::int64_t max_length() const = 0;
  virtual ComputeDType compute_dtype() const = 0;
  virtual bool is_builtin() const = 0;
  // Encodes texts into rows of `out` (texts.size() * dim() floats). Thread-safe.
  virtual void encode(const std::vector<std::string>& texts, float* out) const = 0;
  // Number of tokens `text` becomes (after truncation); used to bucket by length.
  virtual std::size_t token_count(const std::string& text) const = 0;
  // Tokens fed to the model so far: real ones and real + padding (forward passes pad each
  // length bucket to its longest text). {0, 0} for encoders without padding.
  struct TokenCounts {
    std::int64_t real = 0, padded = 0;
  };
  virtual TokenCounts token_counts() const { return {}; }
};

// Builds the encoder `options` describes: the GTR-T5 folder when model_dir is set (a missing
// or damaged folder is an lvmflow::Error naming the file, never a fall-back), otherwise the
// built-in hashed encoder.
std::unique_ptr<TextEncoder> make_text_encoder(const EncoderOptions& options);

// Throws lvmflow::Error (naming `param` and the folder) unless `folder` looks like a
// sentence-transformers GTR-T5 folder (config.json, spiece.model), saying where to get one.
void check_gtr_t5_folder(const std::filesystem::path& folder, const std::string& param);
// The files of a GTR-T5 folder that decide its vectors (fingerprinted into cache keys).
std::vector<std::filesystem::path> gtr_t5_model_files(const std::filesystem::path& folder);

// Sets the intra-op thread count of the tensor library (0: tuned default). Process-wide.
void set_encoder_threads(int threads);
// The default thread count: the number of cores, capped where measured faster (see
// docs/benchmarks/encode.md).
int default_encoder_threads();

}  // namespace lvmflow
