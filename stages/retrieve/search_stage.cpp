// retrieve.search (map): query vectors -> their top-k chunks from a retrieve.index stage,
// one row per (query, rank).
#include <optional>

#include "pipeline/error.hpp"
#include "stages/retrieve/index_folder.hpp"
#include "stages/retrieve/retrieve_stages.hpp"

namespace lvmflow {
namespace {

constexpr const char* kType = "retrieve.search";

struct SearchOptions {
  std::size_t k = 20;
  std::size_t nprobe = 0;
  std::size_t ef_search = 0;
  bool with_text = true;
  bool mmap = true;
  std::size_t threads = 0;
};

class SearchStage : public MapStage {
 public:
  explicit SearchStage(SearchOptions options) : options_(options) {}

  void start(StageContext& ctx) override {
    const std::string where = stage_where(ctx, kType);
    if (ctx.input_count() < 2)
      throw Error(where, "needs two inputs: the query vectors, then a retrieve.index stage",
                  "set `inputs: [<queries>, <retrieve.index stage>]`");
    folder_ = open_index_folder(ctx.input_dir(1), options_.mmap, options_.nprobe, options_.ef_search,
                                where + ", index '" + ctx.input_name(1) + "'");
    folder_->index.set_threads(options_.threads);
    ctx.log("searching " + folder_->index.describe() + " over " + std::to_string(folder_->index.size()) +
            " chunks" + (folder_->index.memory_mapped() ? " (inverted lists memory-mapped)" : ""));
  }

  Batch process(StageContext& ctx, const Batch& in) override {
    const std::string where = stage_where(ctx, kType) + ", input '" + ctx.input_name(0) + "'";
    Batch out;
    out.seq = in.seq;
    auto& query_ids = out.text["query_id"];
    auto& chunk_ids = out.text["chunk_id"];
    auto& ranks = out.ints["rank"];
    auto& scores = out.reals["score"];
    std::vector<std::string>* texts = options_.with_text ? &out.text["chunk_text"] : nullptr;
    if (in.rows() == 0) return out;
    if (in.dim == 0)
      throw Error(where, "batch of " + std::to_string(in.rows()) + " rows carries no vectors",
                  "search with a stage that outputs vectors, e.g. lvm.predict or encode.gtr_t5");
    in.check_consistent(where);
    check_finite(in.vectors.data(), in.rows(), in.dim, where,
                 [&](std::size_t row) { return "query '" + in.ids[row] + "'"; });

    const VectorIndex& index = folder_->index;
    const SearchHits hits = index.search(in.vectors.data(), in.rows(), in.dim, options_.k, where);
    const std::size_t capacity = in.rows() * options_.k;
    for (auto* column : {&out.ids, &query_ids, &chunk_ids}) column->reserve(capacity);
    for (std::size_t q = 0; q < hits.queries; ++q) {
      for (std::size_t i = 0; i < hits.k; ++i) {
        const std::int64_t row = hits.rows_of(q)[i];
        if (row < 0) break;   // fewer than k chunks reachable (tiny index or few IVF probes)
        const auto r = static_cast<std::size_t>(row);
        out.ids.push_back(in.ids[q] + "/" + std::to_string(i + 1));
        query_ids.push_back(in.ids[q]);
        chunk_ids.push_back(folder_->chunks.id(r));
        ranks.push_back(static_cast<std::int64_t>(i + 1));
        scores.push_back(hits.scores_of(q)[i]);
        if (texts) texts->emplace_back(folder_->chunks.text(r));
      }
    }
    return out;
  }

 private:
  SearchOptions options_;
  std::optional<IndexFolder> folder_;
};

}  // namespace

void add_retrieve_search_stage(StageRegistry& registry) {
  StageInfo info;
  info.type = kType;
  info.version = 1;
  info.kind = StageKind::Map;
  info.summary =
      "Query vectors (e.g. lvm.predict output) -> top-k chunks of a retrieve.index stage (side "
      "input), one row per (query, rank) with chunk id, score and chunk text";
  info.params = {
      {"k", ParamType::Int, "20", "hits per query"},
      {"nprobe", ParamType::Int, "0", "IVF lists visited per query; 0 = as stored in the index"},
      {"ef_search", ParamType::Int, "0", "HNSW search beam width; 0 = as stored in the index"},
      {"with_text", ParamType::Bool, "true", "add each hit's chunk text (column chunk_text)"},
      {"mmap", ParamType::Bool, "true",
       "memory-map the index where FAISS allows (IVF inverted lists) instead of reading it",
       false, false},
      threads_param_doc(),
  };
  info.min_inputs = 2;
  info.max_inputs = 2;
  info.make = [](const Params& p) -> std::unique_ptr<Stage> {
    SearchOptions o;
    o.k = size_param(p, "k");
    o.nprobe = size_param(p, "nprobe");
    o.ef_search = size_param(p, "ef_search");
    o.with_text = p.get_bool("with_text");
    o.mmap = p.get_bool("mmap");
    o.threads = size_param(p, "threads");
    return std::make_unique<SearchStage>(o);
  };
  info.validate = [](const Params& p) {
    require_at_least(p, "k", 1, "20");
    require_at_least(p, "nprobe", 0, "0 or 32");
    require_at_least(p, "ef_search", 0, "0 or 128");
    require_at_least(p, "threads", 0, "0 (all cores) or 1");
  };
  registry.add(std::move(info));
}

}  // namespace lvmflow
