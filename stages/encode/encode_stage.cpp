// Stages encode.gtr_t5 (GTR-T5, a model folder is required) and encode.hashed (the built-in
// offline encoder): chunk text -> embedding, with an item-level cache so a dataset rebuild
// encodes only the chunks whose text changed. Both are the same map stage over a TextEncoder.
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"
#include "pipeline/stage.hpp"
#include "stages/common/npy.hpp"
#include "stages/encode/encoder_record.hpp"
#include "stages/encode/text_encoder.hpp"
#include "stages/encode/vector_refs.hpp"

namespace lvmflow {

namespace {

namespace fs = std::filesystem;

constexpr const char* kGtrType = "encode.gtr_t5";
constexpr const char* kHashedType = "encode.hashed";

// encode.gtr_t5's options; encode.hashed has only max_length (and no model).
EncoderOptions options_from(const Params& p) {
  EncoderOptions o;
  o.max_length = p.get_int("max_length");
  if (!p.has("model")) return o;   // encode.hashed
  o.model_dir = p.get_path("model");
  o.pooling = parse_pooling(p.get_string("pooling"), std::string(kGtrType) + " param pooling");
  o.dtype = parse_compute_dtype(p.get_string("dtype"), std::string(kGtrType) + " param dtype");
  o.max_batch_tokens = p.get_int("max_batch_tokens");
  return o;
}

void validate_common(const Params& p) {
  const std::int64_t max_length = p.get_int("max_length");
  if (max_length < 0 || max_length == 1)
    throw Error("param max_length", "param max_length must be 0 (no limit / the model's own) or at least 2, found " +
                                        std::to_string(max_length));
  if (p.get_int("threads") < 0) throw Error("param threads", "param threads must be 0 (tuned default) or positive");
}

void validate_gtr_t5(const Params& p) {
  validate_common(p);
  EncoderOptions o = options_from(p);  // checks pooling and dtype names
  if (o.max_batch_tokens < 1) throw Error("param max_batch_tokens", "param max_batch_tokens must be positive");
  // Cheap early checks, so a missing model fails at `plan` time rather than mid-run.
  if (o.model_dir.empty())
    throw Error(std::string(kGtrType) + " param model", "param model: no GTR-T5 model folder is set",
                "download sentence-transformers/gtr-t5-base from the Hugging Face hub (e.g. `huggingface-cli "
                "download sentence-transformers/gtr-t5-base --local-dir models/gtr-t5-base`) and set `model` to it, "
                "or use type encode.hashed for the built-in offline encoder");
  check_gtr_t5_folder(o.model_dir, "param model");
}

class EncodeStage : public MapStage {
 public:
  EncodeStage(const Params& p, std::string cache_namespace)
      : options_(options_from(p)), threads_(static_cast<int>(p.get_int("threads"))),
        text_column_(p.get_string("text_column")), cache_namespace_(std::move(cache_namespace)) {}


  void start(StageContext& ctx) override {
    set_encoder_threads(threads_);
    encoder_ = make_text_encoder(options_);
    if (encoder_->is_builtin())
      ctx.log("encoder: builtin-hash-768 (encode.hashed), NOT GTR-T5: hashed word and word-pair "
              "features; vectors are not comparable to GTR-T5 vectors and vec2text cannot decode them. "
              "Use encode.gtr_t5 with a gtr-t5-base folder for real embeddings.");
    else
      ctx.log("encoder: " + encoder_->name() + ", pooling " + to_string(encoder_->pooling()) +
              ", max_length " + std::to_string(encoder_->max_length()) + ", dim " +
              std::to_string(encoder_->dim()) + ", fingerprint " + encoder_->fingerprint().substr(0, 16));
    refs_ = std::make_unique<VectorRefReader>(ctx);
    ctx.metric_text("encoder", encoder_->name());
    ctx.metric_text("encoder_fingerprint", encoder_->fingerprint());
    ctx.metric_text("pooling", encoder_->is_builtin() ? "builtin-hash" : to_string(encoder_->pooling()));
    const fs::path dir = ctx.artifact_dir();
    vectors_ = std::make_unique<NpyWriter>(dir / "vectors.npy", encoder_->dim());
    ids_.open(dir / "chunk_ids.txt", std::ios::binary | std::ios::trunc);
    if (!ids_) throw Error((dir / "chunk_ids.txt").string(), "cannot create file");
  }

  Batch process(StageContext& ctx, const Batch& in) override {
    if (!encoder_) throw Error(ctx.stage_name(), "process() before start()");
    const auto& texts = in.text_column(text_column_);
    const std::size_t dim = encoder_->dim();
    Batch out = in;
    out.dim = dim;
    out.vectors.assign(in.rows() * dim, 0.0f);

    std::vector<std::string> keys(in.rows());
    for (std::size_t i = 0; i < in.rows(); ++i) keys[i] = cache_key(texts[i]);
    auto cached = ctx.item_cache().get_many(cache_namespace_, keys);

    std::vector<std::size_t> missing;
    for (std::size_t i = 0; i < in.rows(); ++i)
      if (!cached[i] || !refs_->read(*cached[i], dim, out.vectors.data() + i * dim)) missing.push_back(i);
    if (!missing.empty()) {
      std::vector<std::string> todo;
      todo.reserve(missing.size());
      for (auto i : missing) todo.push_back(texts[i]);
      std::vector<float> fresh(missing.size() * dim);
      const auto t0 = std::chrono::steady_clock::now();
      encoder_->encode(todo, fresh.data());
      encode_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
      std::vector<std::pair<std::size_t, std::string>> fresh_rows;   // (row in batch, item key)
      for (std::size_t j = 0; j < missing.size(); ++j) {
        std::memcpy(out.vectors.data() + missing[j] * dim, fresh.data() + j * dim, dim * sizeof(float));
        fresh_rows.emplace_back(missing[j], keys[missing[j]]);
      }
      // Cached once their rows have a place in vectors.npy (consume_ordered).
      std::lock_guard lock(fresh_mutex_);
      fresh_[in.seq] = std::move(fresh_rows);
    }
    hits_ += in.rows() - missing.size();
    misses_ += missing.size();
    return out;
  }

  void consume_ordered(StageContext& ctx, const Batch& out) override {
    vectors_->append(out.vectors.data(), out.rows());
    std::vector<std::pair<std::size_t, std::string>> fresh_rows;
    {
      std::lock_guard lock(fresh_mutex_);
      if (auto it = fresh_.find(out.seq); it != fresh_.end()) {
        fresh_rows = std::move(it->second);
        fresh_.erase(it);
      }
    }
    if (!fresh_rows.empty() && !ctx.artifact_key().empty()) {
      std::vector<std::pair<std::string, std::string>> entries;
      entries.reserve(fresh_rows.size());
      for (auto& [row, key] : fresh_rows) entries.emplace_back(std::move(key), vector_ref(ctx.artifact_key(), rows_ + row));
      ctx.item_cache().put_many(cache_namespace_, entries);
    }
    for (const auto& id : out.ids) ids_ << id << '\n';
    rows_ += out.rows();
  }

  void finish(StageContext& ctx) override {
    if (!encoder_) return;
    vectors_->close();
    ids_.flush();
    if (!ids_) throw Error((ctx.artifact_dir() / "chunk_ids.txt").string(), "failed writing chunk ids");
    ids_.close();
    write_json_file((ctx.artifact_dir() / "encoder.json").string(),
                    encoder_record(*encoder_, options_.model_dir, rows_));
    const std::string& label = encoder_->name();
    ctx.metric("cache_hits", static_cast<double>(hits_), -1, label);
    ctx.metric("cache_misses", static_cast<double>(misses_), -1, label);
    const double seconds = static_cast<double>(encode_ns_) * 1e-9;
    ctx.metric("encode_seconds", seconds, -1, label);
    if (misses_ > 0 && seconds > 0) ctx.metric("encoded_chunks_per_second", static_cast<double>(misses_) / seconds, -1, label);
    // Share of the tokens fed to the model that were padding (length buckets pad to their
    // longest text): compute spent on nothing, to tune max_batch_tokens against.
    if (const auto tokens = encoder_->token_counts(); tokens.padded > 0)
      ctx.metric("padded_token_share", 1.0 - static_cast<double>(tokens.real) / static_cast<double>(tokens.padded), -1, label);
    ctx.log("encoded " + std::to_string(misses_.load()) + " chunks, " + std::to_string(hits_.load()) +
            " from the item cache, with " + label);
  }

 private:
  // (model fingerprint, pooling, max length, text) -> one key. The fingerprint already covers
  // pooling and max length; they are spelled out so the key stays right if that changes.
  std::string cache_key(const std::string& text) const {
    return Sha256()
        .field(encoder_->fingerprint())
        .field(encoder_->is_builtin() ? "builtin" : to_string(encoder_->pooling()))
        .field(std::to_string(encoder_->max_length()))
        .field(text)
        .hex();
  }

  EncoderOptions options_;
  int threads_;
  std::string text_column_, cache_namespace_;
  std::unique_ptr<TextEncoder> encoder_;
  std::unique_ptr<NpyWriter> vectors_;
  std::unique_ptr<VectorRefReader> refs_;
  std::mutex fresh_mutex_;
  std::map<std::uint64_t, std::vector<std::pair<std::size_t, std::string>>> fresh_;   // by batch seq
  std::ofstream ids_;
  std::size_t rows_ = 0;
  std::atomic<std::size_t> hits_{0}, misses_{0};
  std::atomic<std::int64_t> encode_ns_{0};
};

ParamDoc text_column_doc() { return {"text_column", ParamType::String, "text", "input text column to embed"}; }
ParamDoc threads_doc() { return {"threads", ParamType::Int, "0", "intra-op threads; 0 = tuned default", false, false}; }

StageInfo encode_info(const char* type, std::string summary) {
  StageInfo info;
  info.type = type;
  info.version = 1;
  info.kind = StageKind::Map;
  info.summary = std::move(summary);
  info.min_inputs = 1;
  info.max_inputs = 1;
  info.vectors_file = true;   // batches.bin refers to vectors.npy rows
  return info;
}

}  // namespace

void register_encode_stages(StageRegistry& registry) {
  StageInfo gtr = encode_info(
      kGtrType,
      "Chunk text -> GTR-T5 embedding (libtorch), with an item-level cache keyed by model, pooling, max length "
      "and text; writes vectors.npy (row i = chunk i), chunk_ids.txt and encoder.json. Needs a "
      "sentence-transformers/gtr-t5-base folder (`model`).");
  gtr.params = {
      {"model", ParamType::Path, "",
       "sentence-transformers model folder (config.json, model.safetensors or pytorch_model.bin, spiece.model, "
       "modules.json, 1_Pooling/, 2_Dense/): download sentence-transformers/gtr-t5-base from the Hugging Face hub; "
       "for the built-in offline encoder use type encode.hashed",
       true},
      {"pooling", ParamType::String, "sentence-transformers",
       "sentence-transformers (mean -> Dense -> L2 normalise) or vec2text (mean of encoder output; "
       "the space vec2text inverts)"},
      {"max_length", ParamType::Int, "0", "tokens per text incl. EOS; 0 = the model's max_seq_length"},
      {"dtype", ParamType::String, "float32",
       "float32 (exact), bfloat16 or int8 (dynamic quantisation) for the linear layers: faster, "
       "with a small cosine loss measured in docs/benchmarks/encode.md"},
      text_column_doc(),
      {"max_batch_tokens", ParamType::Int, "8192",
       "padded tokens per forward pass (texts are bucketed by length inside a batch)", false, false},
      threads_doc(),
  };
  // Item-cache values are row references into committed vectors.npy files (vector_refs.hpp);
  // "/v2" since they are no longer vector copies.
  gtr.make = [](const Params& p) -> std::unique_ptr<Stage> { return std::make_unique<EncodeStage>(p, "encode.gtr_t5/v2"); };
  gtr.validate = validate_gtr_t5;
  // The folder's files are fingerprinted into the key: replacing weights in place re-runs it.
  gtr.files_read = [](const Params& p) { return gtr_t5_model_files(p.get_path("model")); };
  registry.add(std::move(gtr));

  StageInfo hashed = encode_info(
      kHashedType,
      "Chunk text -> 768-D built-in offline embedding (hashed word and word-pair features through a fixed random "
      "projection; NOT GTR-T5, no download); same files and item cache as encode.gtr_t5. For tests, the "
      "quickstart and pipelines that must run offline.");
  hashed.params = {
      {"max_length", ParamType::Int, "0", "words per text; 0 = no limit"},
      text_column_doc(),
      threads_doc(),
  };
  hashed.make = [](const Params& p) -> std::unique_ptr<Stage> { return std::make_unique<EncodeStage>(p, "encode.hashed/v2"); };
  hashed.validate = validate_common;
  registry.add(std::move(hashed));
}

}  // namespace lvmflow
