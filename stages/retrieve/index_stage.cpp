// retrieve.index (barrier): encoded chunks -> a FAISS index folder (see index_folder.hpp).
#include <chrono>
#include <sstream>
#include <unordered_set>

#include "pipeline/error.hpp"
#include "pipeline/vector_file.hpp"
#include "stages/common/npy.hpp"
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

// What a first pass over the input learns, reading no vectors: ids and texts (written to the
// chunk table before the index grows), the row count and the vector width.
struct CorpusRows {
  std::vector<std::string> ids;
  std::vector<std::string> texts;   // empty when the input carries no `text` column
  std::size_t dim = 0;
};

CorpusRows scan_rows(const StageInput& input, const std::string& where) {
  CorpusRows c;
  bool with_text = true;
  std::unordered_set<std::string> seen;
  std::size_t dim_inline = 0;
  bool in_file = false;
  input.for_each_batch(
      [&](const Batch& b) {
        if (b.rows() == 0) return;
        b.check_consistent(where + ", input '" + input.name + "'");
        if (b.vector_file_row >= 0) in_file = true;
        else if (b.dim == 0)
          throw Error(where, "input '" + input.name + "' carries no vectors",
                      "index the output of an encoder stage (e.g. encode.gtr_t5)");
        else if (dim_inline && b.dim != dim_inline)
          throw Error(where, "input '" + input.name + "' mixes " + std::to_string(dim_inline) + "-D and " +
                                 std::to_string(b.dim) + "-D vectors",
                      "index vectors from one encoder only");
        else dim_inline = b.dim;
        for (const auto& id : b.ids)
          if (!seen.insert(id).second)
            throw Error(where, "chunk id '" + id + "' appears twice in input '" + input.name + "'",
                        "each row must be a distinct chunk; check the chunking stage");
        c.ids.insert(c.ids.end(), b.ids.begin(), b.ids.end());
        with_text = with_text && b.text.count("text");
        if (with_text) {
          const auto& t = b.text_column("text");
          c.texts.insert(c.texts.end(), t.begin(), t.end());
        }
      },
      /*with_vectors=*/false);
  if (c.ids.empty())
    throw Error(where, "input '" + input.name + "' has no rows to index",
                "check that the upstream stages produced chunks");
  if (!with_text) c.texts.clear();
  c.dim = in_file ? VectorFile(input.dir / VectorFile::kFileName).dim() : dim_inline;
  if (in_file && dim_inline && dim_inline != c.dim)
    throw Error(where, "input '" + input.name + "' mixes " + std::to_string(dim_inline) + "-D and " +
                           std::to_string(c.dim) + "-D vectors",
                "index vectors from one encoder only");
  return c;
}

// Rows that train an index that needs training: all of them up to kTrainSampleRows, else an
// even stride through the input, so k-means sees the whole corpus without a second copy of it.
constexpr std::size_t kTrainSampleRows = 131072;

class IndexStage : public BarrierStage {
 public:
  explicit IndexStage(IndexOptions options) : options_(std::move(options)) {}

  void run(StageContext& ctx, std::vector<StageInput>& inputs, BatchSink& out) override {
    const std::string where = stage_where(ctx, kType);
    if (inputs.empty()) throw Error(where, "no input", "give retrieve.index an encode.* stage as input");
    const StageInput& input = inputs[0];
    CorpusRows corpus = scan_rows(input, where);
    if (corpus.texts.empty()) ctx.log("input has no `text` column: the index stores empty chunk texts");
    const std::size_t count = corpus.ids.size(), dim = corpus.dim;
    ChunkTable::write(ctx.artifact_dir(), corpus.ids, corpus.texts, where);
    std::vector<std::string>().swap(corpus.texts);

    const auto start = std::chrono::steady_clock::now();
    VectorIndex index = VectorIndex::create(count, dim, options_, where);
    // Streams the input's vectors in stream order, checking each; `fn(row, vectors, rows)`.
    auto each_block = [&](const std::function<void(std::size_t, float*, std::size_t)>& fn) {
      std::size_t row = 0;
      input.for_each_batch([&](const Batch& b) {
        if (ctx.cancelled()) throw Error(where, "cancelled while building the index");
        if (b.rows() == 0) return;
        if (b.dim != dim) throw Error(where, "input '" + input.name + "' changed while it was read", "re-run the stage");
        std::vector<float> rows(b.vectors);
        check_finite(rows.data(), b.rows(), dim, where, [&](std::size_t r) { return "chunk '" + b.ids[r] + "'"; });
        fn(row, rows.data(), b.rows());
        row += b.rows();
      });
    };
    if (index.needs_training()) {
      const std::size_t stride = (count + kTrainSampleRows - 1) / kTrainSampleRows;
      std::vector<float> sample;
      each_block([&](std::size_t first, float* rows, std::size_t n) {
        for (std::size_t r = 0; r < n; ++r)
          if ((first + r) % stride == 0) sample.insert(sample.end(), rows + r * dim, rows + (r + 1) * dim);
      });
      ctx.log("training " + index.factory() + " on " + std::to_string(sample.size() / dim) + " of " +
              std::to_string(count) + " vectors");
      index.train(sample.data(), sample.size() / dim, where);
    }
    // Approximate indexes keep the indexed rows as retrieve.eval's exact reference.
    std::unique_ptr<NpyWriter> indexed;
    if (!index.exact()) indexed = std::make_unique<NpyWriter>(ctx.artifact_dir() / VectorFile::kFileName, dim);
    each_block([&](std::size_t, float* rows, std::size_t n) {
      index.add(rows, n, where);
      if (indexed) indexed->append(rows, n);
    });
    if (indexed) indexed->close();
    const double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    index.save(ctx.artifact_dir(), where);

    std::ostringstream msg;
    msg.precision(3);
    msg << "indexed " << count << " chunks of " << dim << "-D as " << index.describe()
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
    summary.ints["dim"] = {static_cast<std::int64_t>(dim)};
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
