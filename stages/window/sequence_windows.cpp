#include "stages/window/sequence_windows.hpp"

#include <algorithm>
#include <cstring>
#include <map>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"

namespace lvmflow {

double article_split_score(std::int64_t article_id, std::uint64_t seed) {
  // SHA-256 rather than a cheap hash: consecutive article ids must still land uniformly.
  std::string digest = sha256_hex("seq.window:" + std::to_string(seed) + ":" + std::to_string(article_id));
  std::uint64_t top = std::stoull(digest.substr(0, 13), nullptr, 16);   // 52 bits
  return static_cast<double>(top) / static_cast<double>(std::uint64_t{1} << 52);
}

namespace {

struct ChunkRef {
  std::int64_t position;
  const Batch* batch;
  std::size_t row;
};

}  // namespace

std::vector<Batch> make_windows(const std::vector<Batch>& chunks, const WindowOptions& options,
                                const std::string& where, WindowStats* stats) {
  if (options.context < 1)
    throw Error(where, "context must be at least 1", "set `context:` to the number of vectors before each target, e.g. 5");
  if (!(options.val_fraction >= 0.0 && options.val_fraction < 1.0))
    throw Error(where, "val_fraction must be in [0, 1)", "set `val_fraction:` to e.g. 0.1");

  WindowStats local;
  std::size_t dim = 0;
  std::map<std::int64_t, std::vector<ChunkRef>> articles;
  for (const Batch& batch : chunks) {
    if (batch.rows() == 0) continue;
    batch.check_consistent(where);
    if (batch.dim == 0)
      throw Error(where, "input chunks carry no vectors",
                  "put an encode.* stage between the chunker and seq.window");
    if (dim != 0 && batch.dim != dim)
      throw Error(where, "input vectors change width from " + std::to_string(dim) + " to " +
                             std::to_string(batch.dim),
                  "feed seq.window from a single encoder");
    dim = batch.dim;
    for (const char* column : {"article_id", "position"})
      if (!batch.ints.count(column))
        throw Error(where, std::string("input chunks have no integer column '") + column + "'",
                    "feed seq.window from an encode.* stage over chunk.text output");
    const auto& article_ids = batch.int_column("article_id");
    const auto& positions = batch.int_column("position");
    for (std::size_t r = 0; r < batch.rows(); ++r)
      articles[article_ids[r]].push_back({positions[r], &batch, r});
    local.chunks += batch.rows();
  }
  local.articles = articles.size();

  const std::size_t n = options.context;
  std::vector<std::int64_t> eligible;
  for (auto& [article_id, refs] : articles) {
    std::sort(refs.begin(), refs.end(),
              [](const ChunkRef& a, const ChunkRef& b) { return a.position < b.position; });
    for (std::size_t i = 1; i < refs.size(); ++i)
      if (refs[i].position == refs[i - 1].position)
        throw Error(where, "article " + std::to_string(article_id) + " has position " +
                               std::to_string(refs[i].position) + " twice",
                    "feed seq.window each chunk once (check for duplicated inputs)");
    if (refs.size() < n + 1) ++local.articles_too_short;
    else eligible.push_back(article_id);
  }

  // Held-out articles by score; if that leaves validation empty on a small corpus, the
  // lowest-scoring article moves over so there is always something to validate on.
  std::map<std::int64_t, bool> is_val;
  std::int64_t lowest_article = 0;
  double lowest_score = 2.0;
  std::size_t val_count = 0;
  for (std::int64_t a : eligible) {
    double score = article_split_score(a, options.seed);
    bool val = score < options.val_fraction;
    is_val[a] = val;
    val_count += val;
    if (score < lowest_score) lowest_score = score, lowest_article = a;
  }
  if (options.val_fraction > 0 && val_count == 0 && eligible.size() >= 2) is_val[lowest_article] = true;

  std::vector<Batch> out;
  Batch current;
  auto start_batch = [&] {
    current = Batch{};
    current.dim = (n + 1) * dim;
    current.ints["article_id"];
    current.ints["target_position"];
    current.ints["split"];
    current.ints["context"];
  };
  start_batch();
  for (std::int64_t article_id : eligible) {
    const auto& refs = articles[article_id];
    const bool val = is_val[article_id];
    ++(val ? local.articles_val : local.articles_train);
    for (std::size_t t = n; t < refs.size(); ++t) {
      const ChunkRef& target = refs[t];
      current.ids.push_back(target.batch->ids[target.row]);
      current.ints["article_id"].push_back(article_id);
      current.ints["target_position"].push_back(target.position);
      current.ints["split"].push_back(val ? kValSplit : kTrainSplit);
      current.ints["context"].push_back(static_cast<std::int64_t>(n));   // makes the layout self-describing
      for (std::size_t k = t - n; k <= t; ++k)
        current.vectors.insert(current.vectors.end(), refs[k].batch->vector(refs[k].row),
                               refs[k].batch->vector(refs[k].row) + dim);
      ++(val ? local.windows_val : local.windows_train);
      if (current.rows() == options.rows_per_batch) {
        out.push_back(std::move(current));
        start_batch();
      }
    }
  }
  if (current.rows() > 0) out.push_back(std::move(current));
  for (std::size_t i = 0; i < out.size(); ++i) out[i].seq = i;
  if (stats) *stats = local;
  return out;
}

}  // namespace lvmflow
