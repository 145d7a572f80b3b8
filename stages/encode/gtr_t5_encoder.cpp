// GTR-T5 from a sentence-transformers model folder: tokenizer, T5 encoder stack, pooling.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <numeric>
#include <thread>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"
#include "stages/common/json.hpp"
#include "stages/encode/builtin_encoder.hpp"
#include "stages/common/t5/t5_model.hpp"
#include "stages/encode/t5_tokenizer.hpp"
#include "stages/encode/text_encoder.hpp"

namespace lvmflow {

namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kDefaultMaxLength = 512;   // T5's trained context when the folder says nothing
constexpr std::int64_t kMaxBatchRows = 64;        // more rows per pass gains nothing on CPU

fs::path require_file(const fs::path& p, const std::string& what) {
  if (!fs::is_regular_file(p))
    throw Error(p.string(), "missing " + what,
                "copy the complete model folder (as published for sentence-transformers/gtr-t5-base)");
  return p;
}

// The sentence-transformers modules after the Transformer, from modules.json.
struct PoolingSetup {
  bool dense = false;
  fs::path dense_dir;
  bool normalize = false;
};

PoolingSetup read_modules(const fs::path& folder, std::int64_t d_model) {
  const fs::path modules_path = require_file(folder / "modules.json", "modules.json (the sentence-transformers module list)");
  const std::string where = modules_path.string();
  Json modules = read_json_file(where);
  PoolingSetup setup;
  bool pooling_seen = false;
  for (const Json& m : modules.as_array(where)) {
    const std::string& type = m.at("type", where).as_string(where + ": type");
    const std::string path = m.find("path") ? m.at("path").as_string(where + ": path") : std::string();
    if (type.ends_with(".Pooling")) {
      pooling_seen = true;
      const fs::path cfg_path = require_file(folder / path / "config.json", "pooling config");
      Json cfg = read_json_file(cfg_path.string());
      const Json* mean = cfg.find("pooling_mode_mean_tokens");
      if (!mean || !mean->as_bool(cfg_path.string()))
        throw Error(cfg_path.string(), "only mean pooling (pooling_mode_mean_tokens) is implemented",
                    "GTR-T5 uses mean pooling; other sentence-transformers poolings are not supported");
    } else if (type.ends_with(".Dense")) {
      setup.dense = true;
      setup.dense_dir = folder / path;
      const fs::path cfg_path = require_file(setup.dense_dir / "config.json", "Dense config");
      Json cfg = read_json_file(cfg_path.string());
      const std::string cw = cfg_path.string();
      if (cfg.at("in_features", cw).as_int(cw + ": in_features") != d_model)
        throw Error(cw, "in_features differs from the encoder's d_model " + std::to_string(d_model));
      if (const Json* bias = cfg.find("bias"); bias && bias->as_bool(cw + ": bias"))
        throw Error(cw, "Dense layers with a bias are not supported", "GTR-T5's Dense has bias: false");
      if (const Json* act = cfg.find("activation_function");
          act && !act->as_string(cw).ends_with("Identity"))
        throw Error(cw, "Dense activation " + act->as_string(cw) + " is not supported",
                    "GTR-T5's Dense uses Identity");
    } else if (type.ends_with(".Normalize")) {
      setup.normalize = true;
    }
  }
  if (!pooling_seen) throw Error(where, "no Pooling module listed", "is this a sentence-transformers folder?");
  return setup;
}

void hash_file_into(Sha256& h, const fs::path& p) {
  h.field(p.filename().string());
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error(p.string(), "cannot read file for fingerprinting");
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<std::size_t>(in.gcount()));
  }
}

class GtrT5Encoder : public TextEncoder {
 public:
  explicit GtrT5Encoder(const EncoderOptions& options) : pooling_(options.pooling), dtype_(options.dtype) {
    const fs::path folder = options.model_dir;
    if (!fs::is_directory(folder))
      throw Error(folder.string(), "model folder does not exist",
                  "set `model` to a folder holding config.json, model.safetensors, spiece.model, "
                  "modules.json, 1_Pooling/ and 2_Dense/ (a download of sentence-transformers/gtr-t5-base)");
    max_batch_tokens_ = std::max<std::int64_t>(options.max_batch_tokens, 1);
    config_ = read_t5_config(folder / "config.json");
    const CheckpointTensors weights = CheckpointTensors::open(folder);
    tokenizer_ = std::make_unique<T5Tokenizer>(folder / "spiece.model");
    if (tokenizer_->vocab_size() > config_.vocab_size)
      throw Error((folder / "spiece.model").string(),
                  "tokenizer has " + std::to_string(tokenizer_->vocab_size()) + " pieces but config.json vocab_size is " +
                      std::to_string(config_.vocab_size),
                  "tokenizer and weights come from different models");

    Sha256 fp;
    fp.field("lvmflow gtr-t5 encoder v1").field(to_string(pooling_)).field(to_string(dtype_));
    hash_file_into(fp, folder / "config.json");
    for (const fs::path& f : weights.files()) hash_file_into(fp, f);
    hash_file_into(fp, folder / "spiece.model");

    if (pooling_ == Pooling::SentenceTransformers) {
      PoolingSetup setup = read_modules(folder, config_.d_model);
      hash_file_into(fp, folder / "modules.json");
      normalize_ = setup.normalize;
      if (setup.dense) {
        const CheckpointTensors dense_weights = CheckpointTensors::open(setup.dense_dir);
        Json cfg = read_json_file((setup.dense_dir / "config.json").string());
        const std::int64_t out = cfg.at("out_features").as_int((setup.dense_dir / "config.json").string());
        dense_ = dense_weights.get("linear.weight", {out, config_.d_model});
        for (const fs::path& f : dense_weights.files()) hash_file_into(fp, f);
      }
    }
    stack_ = std::make_unique<T5EncoderStack>(config_, weights, /*prefix=*/"", dtype_);
    dim_ = dense_.defined() ? static_cast<std::size_t>(dense_.size(0)) : static_cast<std::size_t>(config_.d_model);

    max_length_ = options.max_length;
    if (max_length_ <= 0) {
      max_length_ = kDefaultMaxLength;
      const fs::path sbert = folder / "sentence_bert_config.json";
      if (fs::exists(sbert))
        if (const Json* m = read_json_file(sbert.string()).find("max_seq_length"))
          max_length_ = m->as_int(sbert.string() + ": max_seq_length");
    }
    fp.field(std::to_string(max_length_));
    fingerprint_ = fp.hex();
    name_ = "gtr-t5 (" + fs::absolute(folder).lexically_normal().filename().string() + ")";
    if (name_ == "gtr-t5 ()") name_ = "gtr-t5 (" + fs::absolute(folder).parent_path().filename().string() + ")";
  }

  const std::string& name() const override { return name_; }
  const std::string& fingerprint() const override { return fingerprint_; }
  std::size_t dim() const override { return dim_; }
  Pooling pooling() const override { return pooling_; }
  std::int64_t max_length() const override { return max_length_; }
  ComputeDType compute_dtype() const override { return dtype_; }
  bool is_builtin() const override { return false; }

  std::size_t token_count(const std::string& text) const override {
    return tokenizer_->encode(text, max_length_).size();
  }

  TokenCounts token_counts() const override { return {real_tokens_.load(), padded_tokens_.load()}; }

  void encode(const std::vector<std::string>& texts, float* out) const override {
    // OpenMP thread counts are per calling thread and the engine calls us from its worker
    // threads: apply set_encoder_threads()'s count here, before any oneDNN kernel runs (ATen
    // itself only does so lazily at its first parallel_for in a thread).
    at::init_num_threads();
    c10::InferenceMode inference;
    std::vector<std::vector<std::int64_t>> tokens(texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) tokens[i] = tokenizer_->encode(texts[i], max_length_);
    // Length bucketing: sort by token count, then cut runs whose padded size fits the token
    // budget, so each forward pass pads to a length close to its texts' own.
    std::vector<std::size_t> order(texts.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return tokens[a].size() < tokens[b].size(); });
    std::size_t begin = 0;
    while (begin < order.size()) {
      std::size_t end = begin + 1;
      while (end < order.size() && static_cast<std::int64_t>(end - begin) < kMaxBatchRows &&
             static_cast<std::int64_t>((end - begin + 1) * tokens[order[end]].size()) <= max_batch_tokens_)
        ++end;
      encode_run(tokens, order, begin, end, out);
      begin = end;
    }
  }

 private:
  void encode_run(const std::vector<std::vector<std::int64_t>>& tokens, const std::vector<std::size_t>& order,
                  std::size_t begin, std::size_t end, float* out) const {
    const std::int64_t B = static_cast<std::int64_t>(end - begin);
    const std::int64_t L = static_cast<std::int64_t>(tokens[order[end - 1]].size());
    at::Tensor ids = at::zeros({B, L}, at::kLong);  // pad id 0
    at::Tensor mask = at::zeros({B, L}, at::kLong);
    auto ids_a = ids.accessor<std::int64_t, 2>();
    auto mask_a = mask.accessor<std::int64_t, 2>();
    for (std::int64_t r = 0; r < B; ++r) {
      const auto& t = tokens[order[begin + r]];
      for (std::size_t j = 0; j < t.size(); ++j) {
        ids_a[r][static_cast<std::int64_t>(j)] = t[j];
        mask_a[r][static_cast<std::int64_t>(j)] = 1;
      }
    }
    std::int64_t real = 0;
    for (std::int64_t r = 0; r < B; ++r) real += static_cast<std::int64_t>(tokens[order[begin + r]].size());
    real_tokens_ += real;
    padded_tokens_ += B * L;
    at::Tensor hidden = stack_->forward(ids, mask);                        // [B, L, d]
    at::Tensor m = mask.to(at::kFloat).unsqueeze(-1);                      // [B, L, 1]
    at::Tensor pooled = (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9);   // masked mean
    if (pooling_ == Pooling::SentenceTransformers) {
      if (dense_.defined()) pooled = at::linear(pooled, dense_);
      if (normalize_) pooled = pooled / pooled.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
    }
    pooled = pooled.contiguous();
    const float* src = pooled.data_ptr<float>();
    for (std::int64_t r = 0; r < B; ++r)
      std::copy(src + r * static_cast<std::int64_t>(dim_), src + (r + 1) * static_cast<std::int64_t>(dim_),
                out + order[begin + r] * dim_);
  }

  Pooling pooling_;
  ComputeDType dtype_;
  T5Config config_;
  std::unique_ptr<T5Tokenizer> tokenizer_;
  std::unique_ptr<T5EncoderStack> stack_;
  at::Tensor dense_;
  bool normalize_ = false;
  std::size_t dim_ = 0;
  std::int64_t max_length_ = 0, max_batch_tokens_ = 0;
  mutable std::atomic<std::int64_t> real_tokens_{0}, padded_tokens_{0};   // see token_counts()
  std::string name_, fingerprint_;
};

}  // namespace

std::unique_ptr<TextEncoder> make_text_encoder(const EncoderOptions& options) {
  if (options.model_dir.empty()) return std::make_unique<BuiltinHashEncoder>(options.max_length);
  return std::make_unique<GtrT5Encoder>(options);
}

int default_encoder_threads() {
  // Half the cores: float32 matmuls run on OpenBLAS's own thread pool, so libtorch's OpenMP
  // threads only compete with it; on the 2-core development machine 1 thread beat 2 for every
  // dtype (docs/benchmarks/encode.md).
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency() / 2));
}

void set_encoder_threads(int threads) {
  at::set_num_threads(threads > 0 ? threads : default_encoder_threads());
}

}  // namespace lvmflow
