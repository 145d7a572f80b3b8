// Stage `chunk.text`: section rows from `ingest.wikipedia` -> ordered chunks with ids
// `<article_id>:<position>`. Positions count through an article; ingest never splits an
// article across batches, so each batch can be chunked on its own, in parallel.
#include <atomic>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"
#include "pipeline/stage.hpp"
#include "stages/chunk/text_chunker.hpp"
#include "stages/common/sentencepiece_tokenizer.hpp"

namespace lvmflow {
namespace {

// Sizes in T5 tokens: the sentencepiece model T5 (and GTR-T5) tokenizes with. The shared
// tokenizer in stages/common keeps libsentencepiece's protobuf away from libtorch's.
class SentencePieceMeasure : public chunk::SizeMeasure {
 public:
  explicit SentencePieceMeasure(const std::string& model_path) : tokenizer_(model_path) {}
  std::size_t size(std::string_view text) const override { return tokenizer_.encode(text).size(); }
  const char* unit() const override { return "tokens"; }

 private:
  SentencePieceTokenizer tokenizer_;   // encode() is thread-safe
};

class ChunkTextStage : public MapStage {
 public:
  explicit ChunkTextStage(const Params& p) {
    limits_.target = static_cast<std::size_t>(p.get_int("target_words"));
    limits_.min = static_cast<std::size_t>(p.get_int("min_words"));
    limits_.max = static_cast<std::size_t>(p.get_int("max_words"));
    if (p.has("tokenizer") && !p.get_path("tokenizer").empty())
      measure_ = std::make_unique<SentencePieceMeasure>(p.get_path("tokenizer"));
    else
      measure_ = std::make_unique<chunk::WordMeasure>();
  }

  Batch process(StageContext&, const Batch& in) override {
    const auto& titles = in.text_column("title");
    const auto& sections = in.text_column("section");
    const auto& texts = in.text_column("text");
    const auto& article_ids = in.int_column("article_id");
    check_whole_articles(in);
    Batch out;
    out.seq = in.seq;
    auto& out_title = out.text["title"];
    auto& out_section = out.text["section"];
    auto& out_text = out.text["text"];
    auto& out_hash = out.text["hash"];
    auto& out_article = out.ints["article_id"];
    auto& out_position = out.ints["position"];
    std::int64_t position = 0;
    for (std::size_t row = 0; row < in.rows(); ++row) {
      if (row == 0 || article_ids[row] != article_ids[row - 1]) position = 0;
      for (auto& c : chunk::chunk_section(texts[row], limits_, *measure_)) {
        out.ids.push_back(std::to_string(article_ids[row]) + ":" + std::to_string(position));
        out_title.push_back(titles[row]);
        out_section.push_back(sections[row]);
        out_hash.push_back(sha256_hex(c.text));
        out_text.push_back(std::move(c.text));
        out_article.push_back(article_ids[row]);
        out_position.push_back(position++);
        size_total_ += c.size;
      }
    }
    return out;
  }

  // Positions are counted per batch, which is right only when no article is split across
  // batches. ingest.wikipedia never splits one; re-batching (a `batch_size` on this stage) would.
  static void check_whole_articles(const Batch& in) {
    auto it = in.ints.find("section_index");
    if (it == in.ints.end() || in.rows() == 0 || it->second.front() == 0) return;
    throw Error("chunk.text", "batch " + std::to_string(in.seq) + " starts in the middle of article " +
                                  std::to_string(in.int_column("article_id").front()) + " (section " +
                                  std::to_string(it->second.front()) + "), so chunk positions would restart",
                "remove `batch_size` from the chunk stage: it needs whole articles per batch, as "
                "ingest.wikipedia emits them");
  }

  void consume_ordered(StageContext& ctx, const Batch& batch) override {
    ctx.record_chunks(batch);
    chunks_ += batch.rows();
  }

  void finish(StageContext& ctx) override {
    ctx.metric("chunks", static_cast<double>(chunks_));
    if (chunks_ > 0)
      ctx.metric(std::string("chunk_mean_") + measure_->unit(),
                 static_cast<double>(size_total_.load()) / static_cast<double>(chunks_));
  }

 private:
  chunk::ChunkLimits limits_;
  std::unique_ptr<chunk::SizeMeasure> measure_;
  std::size_t chunks_ = 0;                  // touched only in consume_ordered (serial)
  std::atomic<std::size_t> size_total_{0};  // process() runs concurrently
};

}  // namespace

void register_chunk_stages(StageRegistry& registry) {
  StageInfo info;
  info.type = "chunk.text";
  info.version = 1;
  info.kind = StageKind::Map;
  info.summary =
      "Splits section text into ordered, sentence-aligned chunks of about `target_words` words "
      "(or T5 tokens with `tokenizer`), with article id, title, section, position and hash.";
  info.params = {
      {"target_words", ParamType::Int, "40", "preferred chunk size (T5 tokens when `tokenizer` is set)"},
      {"min_words", ParamType::Int, "12", "chunks smaller than this run on into the next paragraph"},
      {"max_words", ParamType::Int, "80", "hard maximum; only a sentence longer than this is cut"},
      {"tokenizer", ParamType::Path, "", "sentencepiece model (T5 spiece.model): sizes count tokens"},
  };
  info.min_inputs = 1;
  info.max_inputs = 1;
  info.make = [](const Params& p) -> std::unique_ptr<Stage> { return std::make_unique<ChunkTextStage>(p); };
  info.files_read = [](const Params& p) {
    std::vector<std::filesystem::path> files;
    if (p.has("tokenizer") && !p.get_path("tokenizer").empty()) files.emplace_back(p.get_path("tokenizer"));
    return files;
  };
  info.validate = [](const Params& p) {
    auto target = p.get_int("target_words"), min = p.get_int("min_words"), max = p.get_int("max_words");
    if (min < 1 || !(min <= target && target <= max))
      throw Error("params", "need 1 <= min_words <= target_words <= max_words, got " +
                                std::to_string(min) + " / " + std::to_string(target) + " / " +
                                std::to_string(max),
                  "e.g. min_words: 12, target_words: 40, max_words: 80");
    if (p.has("tokenizer") && !p.get_path("tokenizer").empty() &&
        !std::filesystem::exists(p.get_path("tokenizer")))
      throw Error("param tokenizer", "tokenizer '" + p.get_path("tokenizer") + "' does not exist",
                  "point it at a sentencepiece .model file, or leave it out to count words");
  };
  registry.add(std::move(info));
}

}  // namespace lvmflow
