// retrieve.index (barrier): encoded chunks -> a FAISS index folder (see index_folder.hpp).
#include <chrono>
#include <sstream>
#include <unordered_set>

#include "pipeline/error.hpp"
#include "stages/retrieve/index_folder.hpp"
#include "stages/retrieve/retrieve_stages.hpp"

namespace lvmflow {
namespace {

constexpr const char* kType = "retrieve.index";

IndexOptions index_options(const Params& p) {
  IndexOptions o;
  o.index = p.get_string("index");
  o.nlist = size_param(p, "nlist");
  o.nprobe = size_param(p, "nprobe");
  o.hnsw_m = size_param(p, "hnsw_m");
  o.ef_construction = size_param(p, "ef_construction");
  o.ef_search = size_param(p, "ef_search");
  o.normalize = p.get_bool("normalize");
  o.threads = size_param(p, "threads");
  return o;
}

// All rows of the input, in stream order, as one block.
struct Corpus {
  std::vector<std::string> ids;
  std::vector<std::string> texts;   // empty when the input carries no `text` column
  std::vector<float> vectors;
  std::size_t dim = 0;
};

Corpus gather(const StageInput& input, const std::string& where) {
  Corpus c;
  bool with_text = !input.batches.empty();
  for (const Batch& b : input.batches)
    if (b.rows() && !b.text.count("text")) with_text = false;
  std::unordered_set<std::string> seen;
  for (const Batch& b : input.batches) {
    if (b.rows() == 0) continue;
    b.check_consistent(where + ", input '" + input.name + "'");
    if (b.dim == 0)
      throw Error(where, "input '" + input.name + "' carries no vectors",
                  "index the output of an encoder stage (e.g. encode.gtr_t5)");
    if (c.dim && b.dim != c.dim)
      throw Error(where, "input '" + input.name + "' mixes " + std::to_string(c.dim) + "-D and " +
                             std::to_string(b.dim) + "-D vectors",
                  "index vectors from one encoder only");
    c.dim = b.dim;
    for (const auto& id : b.ids)
      if (!seen.insert(id).second)
        throw Error(where, "chunk id '" + id + "' appears twice in input '" + input.name + "'",
                    "each row must be a distinct chunk; check the chunking stage");
    c.ids.insert(c.ids.end(), b.ids.begin(), b.ids.end());
    if (with_text) {
      const auto& t = b.text_column("text");
      c.texts.insert(c.texts.end(), t.begin(), t.end());
    }
    c.vectors.insert(c.vectors.end(), b.vectors.begin(), b.vectors.end());
  }
  if (c.ids.empty())
    throw Error(where, "input '" + input.name + "' has no rows to index",
                "check that the upstream stages produced chunks");
  return c;
}

class IndexStage : public BarrierStage {
 public:
  explicit IndexStage(IndexOptions options) : options_(std::move(options)) {}

  void run(StageContext& ctx, std::vector<StageInput>& inputs, BatchSink& out) override {
    const std::string where = stage_where(ctx, kType);
    if (inputs.empty()) throw Error(where, "no input", "give retrieve.index an encode.* stage as input");
    Corpus corpus = gather(inputs[0], where);
    if (corpus.texts.empty()) ctx.log("input has no `text` column: the index stores empty chunk texts");
    const std::size_t count = corpus.ids.size();
    check_finite(corpus.vectors.data(), count, corpus.dim, where,
                 [&](std::size_t row) { return "chunk '" + corpus.ids[row] + "'"; });

    const auto start = std::chrono::steady_clock::now();
    VectorIndex index = VectorIndex::build(corpus.vectors, count, corpus.dim, options_, where,
                                           [&] { return ctx.cancelled(); });
    const double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    save_index_folder(ctx.artifact_dir(), index, corpus.ids, corpus.texts, corpus.vectors, where);

    std::ostringstream msg;
    msg.precision(3);
    msg << "indexed " << count << " chunks of " << corpus.dim << "-D as " << index.describe()
        << (index.normalized() ? ", cosine" : ", inner product") << " in " << build_s << " s";
    ctx.log(msg.str());
    ctx.metric("vectors", static_cast<double>(count));
    ctx.metric("build_seconds", build_s);

    // One summary row, so a plan/report shows what was built; the index itself is the folder.
    Batch summary;
    summary.ids = {"index"};
    summary.text["factory"] = {index.factory()};
    summary.text["description"] = {index.describe()};
    summary.ints["count"] = {static_cast<std::int64_t>(count)};
    summary.ints["dim"] = {static_cast<std::int64_t>(corpus.dim)};
    summary.ints["exact"] = {index.exact() ? 1 : 0};
    out.emit(std::move(summary));
  }

 private:
  IndexOptions options_;
};

}  // namespace

void add_retrieve_index_stage(StageRegistry& registry) {
  StageInfo info;
  info.type = kType;
  info.version = 1;
  info.kind = StageKind::Barrier;
  info.summary =
      "Chunk vectors -> FAISS index (inner product; cosine with normalize) in FAISS's own file "
      "format, with ids.txt and texts.bin mapping index rows back to chunks";
  info.params = {
      {"index", ParamType::String, "Flat",
       "Flat (exact), IVF (IVF<nlist>,Flat), HNSW (HNSW<hnsw_m>), IVF,<codec> such as IVF,PQ64 "
       "(nlist filled in), or any FAISS index_factory string such as IVF1024,PQ64"},
      {"nlist", ParamType::Int, "0", "IVF lists; 0 = about 4*sqrt(chunks)"},
      {"nprobe", ParamType::Int, "16", "IVF lists visited per query (stored in the index)"},
      {"hnsw_m", ParamType::Int, "32", "HNSW links per node (FAISS's M)"},
      {"ef_construction", ParamType::Int, "40", "HNSW build beam width (FAISS's efConstruction and its default)"},
      {"ef_search", ParamType::Int, "64", "HNSW search beam width (FAISS's efSearch; stored in the index)"},
      {"normalize", ParamType::Bool, "true",
       "L2-normalise chunk and query vectors, so inner product is cosine similarity"},
      threads_param_doc(),
  };
  info.min_inputs = 1;
  info.max_inputs = 1;
  info.make = [](const Params& p) -> std::unique_ptr<Stage> {
    return std::make_unique<IndexStage>(index_options(p));
  };
  info.validate = [](const Params& p) {
    if (p.get_string("index").empty())
      throw Error("param index", "param index is empty", "set `index:` to Flat, IVF, HNSW or a FAISS factory string");
    require_at_least(p, "nlist", 0, "0 (auto) or 1024");
    require_at_least(p, "nprobe", 1, "16");
    require_at_least(p, "hnsw_m", 2, "32");
    require_at_least(p, "ef_construction", 1, "80");
    require_at_least(p, "ef_search", 1, "64");
    require_at_least(p, "threads", 0, "0 (all cores) or 1");
  };
  registry.add(std::move(info));
}

}  // namespace lvmflow
