// Vectors (e.g. lvm.predict output) -> text, two stage types over one map stage:
//   decode.vec2text: inversion model + corrector (Vec2TextInverter); the checkpoints are required.
//   decode.nearest:  the nearest chunk of a retrieve.index side input (retrieve's index code),
//                    labelled `decode: nearest-chunk`: retrieval, not generation.
// Per row it reports the text, the method, a score, the cosine between the target vector and
// the re-encoded text (when an encoder is configured) and BLEU-4 / token F1 against the true
// chunk text when the row id names a chunk of the index.
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"
#include "pipeline/stage.hpp"
#include "stages/common/t5/checkpoint_files.hpp"
#include "stages/decode/text_metrics.hpp"
#include "stages/decode/vec2text_config.hpp"
#include "stages/decode/vec2text_inverter.hpp"
#include "stages/encode/text_encoder.hpp"
#include "stages/retrieve/index_folder.hpp"

namespace lvmflow {

namespace {

namespace fs = std::filesystem;

constexpr const char* kVec2TextType = "decode.vec2text";
constexpr const char* kNearestType = "decode.nearest";
constexpr const char* kNearestChunk = "decode: nearest-chunk";
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

fs::path path_param(const Params& p, const std::string& name) {
  return p.has(name) ? fs::path(p.get_path(name)) : fs::path();
}

struct DecodeOptions {
  Vec2TextOptions vec2text;
  fs::path encoder_model, tokenizer;
  std::string pooling;   // auto | vec2text | sentence-transformers
  std::size_t batch_size = 8;
  int threads = 0;
  double sample_fraction = 1.0;

  bool uses_vec2text() const { return !vec2text.inversion_model.empty(); }
};

// Params of both types; the vec2text ones only when the type has them (decode.vec2text).
DecodeOptions options_from(const Params& p) {
  DecodeOptions o;
  o.encoder_model = path_param(p, "encoder_model");
  o.pooling = p.get_string("pooling");
  o.batch_size = static_cast<std::size_t>(std::max<std::int64_t>(1, p.get_int("batch_size")));
  o.threads = static_cast<int>(p.get_int("threads"));
  o.sample_fraction = p.get_float("sample_fraction");
  if (!p.has("num_steps")) return o;   // decode.nearest
  o.vec2text.inversion_model = path_param(p, "inversion_model");
  o.vec2text.corrector_model = path_param(p, "corrector_model");
  o.vec2text.search.num_steps = p.get_int("num_steps");
  o.vec2text.search.sequence_beam_width = p.get_int("sequence_beam_width");
  o.vec2text.search.num_beams = p.get_int("num_beams");
  o.vec2text.search.max_length = p.get_int("max_length");
  o.tokenizer = path_param(p, "tokenizer");
  o.vec2text.dtype = parse_compute_dtype(p.get_string("dtype"), std::string(kVec2TextType) + " param dtype");
  return o;
}

// Checks both types share. The engine reports these with the stage's spec location, so each
// message names its param.
void validate_common(const Params& p, const std::string& where) {
  const DecodeOptions o = options_from(p);
  if (p.get_int("threads") < 0)
    throw Error(where, "param threads must be >= 0, found " + std::to_string(p.get_int("threads")));
  if (p.get_int("batch_size") < 1)
    throw Error(where, "param batch_size must be >= 1, found " + std::to_string(p.get_int("batch_size")));
  if (!(o.sample_fraction > 0 && o.sample_fraction <= 1))
    throw Error(where, "param sample_fraction must be in (0, 1], found " + std::to_string(o.sample_fraction));
  if (o.pooling != "auto") parse_pooling(o.pooling, where + " param pooling");
  if (!o.encoder_model.empty()) check_gtr_t5_folder(o.encoder_model, where + " param encoder_model");
}

void validate_vec2text(const Params& p) {
  const std::string where = kVec2TextType;
  validate_common(p, where);
  const DecodeOptions o = options_from(p);
  if (!o.uses_vec2text())
    throw Error(where, "param inversion_model: no vec2text inversion checkpoint is set",
                "download jxm/gtr__nq__32 (inversion_model) and jxm/gtr__nq__32__correct (corrector_model) from the "
                "Hugging Face hub, or use type decode.nearest to decode each vector to its nearest indexed chunk");
  for (const char* name : {"num_steps", "sequence_beam_width", "max_length"})
    if (p.get_int(name) < 0)
      throw Error(where, std::string("param ") + name + " must be >= 0, found " + std::to_string(p.get_int(name)));
  if (p.get_int("num_beams") < 1)
    throw Error(where, "param num_beams must be >= 1, found " + std::to_string(p.get_int("num_beams")));
  if (o.vec2text.search.max_length == 1)
    throw Error(where, "param max_length must be 0 (the checkpoint's max_seq_length) or >= 2");
  if (o.vec2text.search.num_steps > 0 && o.vec2text.corrector_model.empty())
    throw Error(where, "param num_steps " + std::to_string(o.vec2text.search.num_steps) + ": corrections need corrector_model",
                "set corrector_model or num_steps: 0");
  if (o.vec2text.search.num_steps > 0 && o.encoder_model.empty())
    throw Error(where, "param num_steps " + std::to_string(o.vec2text.search.num_steps) +
                           ": corrections re-embed every hypothesis with GTR-T5, but encoder_model is not set",
                "set encoder_model to a gtr-t5-base folder");
  for (const auto& [name, dir] : {std::pair<const char*, fs::path>{"inversion_model", o.vec2text.inversion_model},
                                  {"corrector_model", o.vec2text.corrector_model}})
    if (!dir.empty() && !fs::is_directory(dir))
      throw Error(where, std::string("param ") + name + ": folder " + dir.string() + " does not exist",
                  "point it at a download of jxm/gtr__nq__32 (inversion) or jxm/gtr__nq__32__correct (corrector)");
}

// The checkpoint, encoder and tokenizer files decide the texts: fingerprinted into the cache
// key, so replacing a model in place re-runs the stage.
std::vector<fs::path> model_files(const Params& p) {
  const DecodeOptions o = options_from(p);
  std::vector<fs::path> files;
  for (const fs::path& dir : {o.vec2text.inversion_model, o.vec2text.corrector_model})
    if (!dir.empty())
      for (const auto& f : checkpoint_files(dir)) files.push_back(f);
  if (!o.encoder_model.empty())
    for (const auto& f : gtr_t5_model_files(o.encoder_model)) files.push_back(f);
  if (!o.tokenizer.empty() && fs::is_regular_file(o.tokenizer)) files.push_back(o.tokenizer);
  return files;
}

// Whether row `id` is in the decoded sample: SHA-256 of the id read as a number in [0, 1), so
// the sample depends only on the id (not on batching or order) and grows with the fraction.
bool sampled(const std::string& id, double fraction) {
  if (fraction >= 1) return true;
  const std::string hex = sha256_hex("decode.vec2text:" + id).substr(0, 13);   // 52 bits
  return static_cast<double>(std::stoull(hex, nullptr, 16)) / 4503599627370496.0 < fraction;
}

// The rows `keep` of `in` (all columns and vectors).
Batch select_rows(const Batch& in, const std::vector<std::size_t>& keep) {
  Batch out;
  out.seq = in.seq;
  out.dim = in.dim;
  for (std::size_t r : keep) {
    out.ids.push_back(in.ids[r]);
    for (const auto& [name, col] : in.text) out.text[name].push_back(col[r]);
    for (const auto& [name, col] : in.ints) out.ints[name].push_back(col[r]);
    for (const auto& [name, col] : in.reals) out.reals[name].push_back(col[r]);
    out.vectors.insert(out.vectors.end(), in.vector(r), in.vector(r) + in.dim);
  }
  for (const auto& [name, col] : in.text) out.text[name];   // keep empty columns present
  for (const auto& [name, col] : in.ints) out.ints[name];
  for (const auto& [name, col] : in.reals) out.reals[name];
  return out;
}

std::string stage_where(const StageContext& ctx, bool vec2text) {
  return "stage '" + ctx.stage_name() + "' (" + (vec2text ? kVec2TextType : kNearestType) + ")";
}

double cosine(const float* a, const float* b, std::size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

class DecodeStage : public MapStage {
 public:
  explicit DecodeStage(DecodeOptions o) : options_(std::move(o)) {}

  void start(StageContext& ctx) override {
    const std::string where = stage_where(ctx, options_.uses_vec2text());
    if (options_.threads > 0) set_encoder_threads(options_.threads);
    for (std::size_t i = 1; i < ctx.input_count(); ++i) {
      const fs::path dir = ctx.input_dir(i);
      if (!fs::exists(dir / "index.faiss"))
        throw Error(where + ", input '" + ctx.input_name(i) + "'", "is not a retrieve.index stage (no index.faiss in " +
                                                                       dir.string() + ")",
                    "the second input of a decode stage is a retrieve.index stage");
      if (index_) throw Error(where, "more than one retrieve.index side input", "give one index");
      index_.emplace(open_index_folder(dir, /*mmap=*/true, 0, 0, where + ", index '" + ctx.input_name(i) + "'"));
      for (std::size_t r = 0; r < index_->chunks.size(); ++r) chunk_rows_.emplace(index_->chunks.id(r), r);
    }
    if (!options_.uses_vec2text() && !index_)
      throw Error(where, "no retrieve.index input: nothing to decode with",
                  "give a retrieve.index stage as second input: `inputs: [<vectors>, <index>]`");

    const bool vec2text = options_.uses_vec2text();
    if (!options_.encoder_model.empty()) {
      EncoderOptions eo;
      eo.model_dir = options_.encoder_model;
      const std::string pooling =
          options_.pooling != "auto" ? options_.pooling : (vec2text ? "vec2text" : "sentence-transformers");
      eo.pooling = parse_pooling(pooling, where + " param pooling");
      encoder_ = make_text_encoder(eo);
      if (vec2text) {
        // The re-embedding encoder must match what the corrector was trained on: vec2text
        // pooling over max_seq_length tokens (32 for gtr__nq__32), whatever `pooling` says.
        EncoderOptions re = eo;
        re.pooling = Pooling::Vec2Text;
        re.max_length = read_max_seq_length();
        embedder_ = make_text_encoder(re);
      }
    }
    if (vec2text) {
      inverter_ = std::make_unique<Vec2TextInverter>(options_.vec2text, embedder_.get(), tokenizer_path(where));
      method_ = options_.vec2text.search.num_steps == 0
                    ? "vec2text: hypothesis"
                    : "vec2text: " + std::to_string(options_.vec2text.search.num_steps) + " corrections, sequence beam " +
                          std::to_string(options_.vec2text.search.sequence_beam_width);
      if (options_.vec2text.search.num_beams > 1) method_ += ", " + std::to_string(options_.vec2text.search.num_beams) + " beams";
      ctx.log(inverter_->describe());
    } else {
      method_ = kNearestChunk;
      ctx.log(std::string(kNearestChunk) + ": each vector decodes to the text of its nearest chunk in " + index_->index.describe() + " (" + std::to_string(index_->index.size()) +
              " chunks). This is retrieval, not generation.");
    }
    ctx.metric_text("decode_method", method_);
  }

  Batch process(StageContext& ctx, const Batch& all) override {
    const std::string where = stage_where(ctx, options_.uses_vec2text()) + ", input '" + ctx.input_name(0) + "'";
    all.check_consistent(where);
    std::vector<std::size_t> keep;
    for (std::size_t r = 0; r < all.rows(); ++r)
      if (sampled(all.ids[r], options_.sample_fraction)) keep.push_back(r);
    const Batch sample = keep.size() == all.rows() ? Batch() : select_rows(all, keep);
    const Batch& in = keep.size() == all.rows() ? all : sample;
    Batch out;
    out.seq = in.seq;
    out.ids = in.ids;
    // Input columns pass through; the decode columns below replace same-named ones.
    out.text = in.text;
    out.ints = in.ints;
    out.reals = in.reals;
    const std::size_t n = in.rows();
    auto& texts = out.text["text"];
    auto& methods = out.text["method"];
    auto& true_texts = out.text["true_text"];
    auto& scores = out.reals["score"];
    auto& cosines = out.reals["text_cosine"];
    auto& bleus = out.reals["bleu"];
    auto& f1s = out.reals["token_f1"];
    texts.assign(n, "");
    methods.assign(n, method_);
    true_texts.assign(n, "");
    scores.assign(n, kNaN);
    cosines.assign(n, kNaN);
    bleus.assign(n, kNaN);
    f1s.assign(n, kNaN);
    if (n == 0) return out;
    in.check_consistent(where);
    const std::size_t expected = inverter_ ? inverter_->embedder_dim() : index_->index.dim();
    if (in.dim != expected)
      throw Error(where, "vectors are " + std::to_string(in.dim) + "-D, the decoder expects " + std::to_string(expected) + "-D",
                  "decode the output of lvm.predict or encode.gtr_t5 for the same encoder");
    for (float v : in.vectors)
      if (!std::isfinite(v)) throw Error(where, "a vector holds NaN or infinity", "check the stage that produced them");

    const auto t0 = std::chrono::steady_clock::now();
    if (inverter_) {
      for (std::size_t b = 0; b < n; b += options_.batch_size) {
        if (ctx.cancelled()) return out;
        const std::size_t m = std::min(options_.batch_size, n - b);
        auto part = inverter_->invert(in.vector(b), m);
        for (std::size_t i = 0; i < m; ++i) texts[b + i] = std::move(part[i]);
      }
    } else {
      const SearchHits hits = index_->index.search(in.vectors.data(), n, in.dim, 1, where);
      for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t row = hits.rows_of(i)[0];
        if (row < 0) continue;
        texts[i] = std::string(index_->chunks.text(static_cast<std::size_t>(row)));
        scores[i] = hits.scores_of(i)[0];
      }
    }
    if (encoder_) {
      std::vector<float> re(n * encoder_->dim());
      encoder_->encode(texts, re.data());
      if (encoder_->dim() == in.dim)
        for (std::size_t i = 0; i < n; ++i) cosines[i] = cosine(in.vector(i), re.data() + i * in.dim, in.dim);
      if (inverter_) scores = cosines;   // vec2text's own ranking criterion
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (std::size_t i = 0; i < n; ++i) {
      auto it = chunk_rows_.find(in.ids[i]);
      if (it == chunk_rows_.end()) continue;
      true_texts[i] = std::string(index_->chunks.text(it->second));
      bleus[i] = bleu4(texts[i], true_texts[i]);
      f1s[i] = token_f1(texts[i], true_texts[i]);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    decode_seconds_ += seconds;
    return out;
  }

  void consume_ordered(StageContext&, const Batch& out) override {
    const auto& cos = out.reals.at("text_cosine");
    const auto& bleu = out.reals.at("bleu");
    const auto& f1 = out.reals.at("token_f1");
    for (std::size_t i = 0; i < out.rows(); ++i) {
      ++decoded_;
      if (!std::isnan(cos[i])) cosine_sum_ += cos[i], ++cosine_count_;
      if (!std::isnan(bleu[i])) bleu_sum_ += bleu[i], f1_sum_ += f1[i], ++known_;
    }
  }

  void finish(StageContext& ctx) override {
    ctx.metric("vectors_decoded", static_cast<double>(decoded_));
    if (decoded_ > 0) ctx.metric("seconds_per_vector", decode_seconds_ / static_cast<double>(decoded_));
    if (cosine_count_ > 0) ctx.metric("text_cosine_mean", cosine_sum_ / static_cast<double>(cosine_count_));
    if (known_ > 0) {
      ctx.metric("bleu_mean", bleu_sum_ / static_cast<double>(known_));
      ctx.metric("token_f1_mean", f1_sum_ / static_cast<double>(known_));
      ctx.metric("rows_with_true_text", static_cast<double>(known_));
    }
  }

 private:
  std::int64_t read_max_seq_length() const {
    return read_vec2text_config(options_.vec2text.inversion_model).max_seq_length;
  }
  fs::path tokenizer_path(const std::string& where) const {
    if (!options_.tokenizer.empty()) return options_.tokenizer;
    for (const fs::path& dir : {options_.vec2text.inversion_model, options_.encoder_model})
      if (!dir.empty() && fs::exists(dir / "spiece.model")) return dir / "spiece.model";
    throw Error(where, "no T5 tokenizer: neither inversion_model nor encoder_model holds spiece.model",
                "set tokenizer to t5-base's spiece.model (gtr-t5-base ships the same one)");
  }

  DecodeOptions options_;
  std::optional<IndexFolder> index_;
  std::unordered_map<std::string, std::size_t> chunk_rows_;
  std::unique_ptr<TextEncoder> encoder_, embedder_;
  std::unique_ptr<Vec2TextInverter> inverter_;
  std::string method_;
  std::mutex mutex_;
  double decode_seconds_ = 0;
  std::size_t decoded_ = 0, cosine_count_ = 0, known_ = 0;
  double cosine_sum_ = 0, bleu_sum_ = 0, f1_sum_ = 0;
};

StageInfo decode_info(const char* type, std::string summary) {
  StageInfo info;
  info.type = type;
  info.version = 1;
  info.kind = StageKind::Map;
  info.summary = std::move(summary);
  info.min_inputs = 1;
  info.max_inputs = 2;
  info.make = [](const Params& p) -> std::unique_ptr<Stage> { return std::make_unique<DecodeStage>(options_from(p)); };
  info.files_read = model_files;
  return info;
}

// The params both types have.
std::vector<ParamDoc> common_params(const char* pooling_help) {
  return {
      {"encoder_model", ParamType::Path, "", "GTR-T5 folder (a download of sentence-transformers/gtr-t5-base): "
                                             "re-embeds each text for text_cosine (and vec2text's corrections)"},
      {"pooling", ParamType::String, "auto", pooling_help},
      {"sample_fraction", ParamType::Float, "1", "decode only this share of the rows, chosen by a hash of the "
                                                 "row id (stable across runs and batchings); the others are dropped"},
      {"batch_size", ParamType::Int, "8", "vectors decoded together", false, false},
      {"threads", ParamType::Int, "0", "tensor library threads (0: default)", false, false},
  };
}

}  // namespace

void register_decode_stages(StageRegistry& registry) {
  StageInfo v2t = decode_info(
      kVec2TextType,
      "Vectors -> text with vec2text (inversion model + corrector, natively in libtorch; checkpoints required: "
      "jxm/gtr__nq__32 and jxm/gtr__nq__32__correct); with cosine of the re-encoded text and, given a "
      "retrieve.index as second input, BLEU-4 / token F1 against the true chunk");
  v2t.params = {
      {"inversion_model", ParamType::Path, "", "vec2text inversion checkpoint folder: download jxm/gtr__nq__32 "
                                               "(and jxm/gtr__nq__32__correct for corrector_model) from the Hugging "
                                               "Face hub; to decode without models use type decode.nearest", true},
      {"corrector_model", ParamType::Path, "", "vec2text corrector checkpoint folder: a download of "
                                               "jxm/gtr__nq__32__correct (needed when num_steps > 0)"},
      {"tokenizer", ParamType::Path, "", "T5 spiece.model; default: the one in inversion_model or encoder_model"},
      {"num_steps", ParamType::Int, "0", "corrector steps after the first hypothesis (0: hypothesis only)"},
      {"sequence_beam_width", ParamType::Int, "0", "hypotheses kept between correction steps, ranked by cosine"},
      {"num_beams", ParamType::Int, "1", "token-level beam search width in each generation (1: greedy)"},
      {"max_length", ParamType::Int, "0", "generated tokens incl. the start token; 0: the checkpoint's max_seq_length"},
      {"dtype", ParamType::String, "float32", "vec2text projection weights: float32 (exact), bfloat16 or int8 "
                                              "(dynamic quantisation): less memory traffic per generated token; texts may differ"},
  };
  for (auto& d : common_params("pooling for text_cosine: auto (= vec2text), vec2text, sentence-transformers"))
    v2t.params.push_back(std::move(d));
  v2t.validate = validate_vec2text;
  registry.add(std::move(v2t));

  StageInfo nearest = decode_info(
      kNearestType,
      "Vectors -> the text of their nearest chunk in a retrieve.index stage (second input), labelled "
      "`decode: nearest-chunk`: retrieval, not generation, and no model needed; with BLEU-4 / token F1 against "
      "the true chunk and, given encoder_model, the cosine of the re-encoded text");
  nearest.params = common_params("pooling for text_cosine: auto (= sentence-transformers), vec2text, sentence-transformers");
  nearest.min_inputs = 2;
  nearest.validate = [](const Params& p) { validate_common(p, kNearestType); };
  registry.add(std::move(nearest));
}

}  // namespace lvmflow
