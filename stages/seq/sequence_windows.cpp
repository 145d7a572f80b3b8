#include "stages/seq/sequence_windows.hpp"

#include <algorithm>
#include <map>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"
#include "pipeline/vector_file.hpp"
#include "stages/common/npy.hpp"

namespace lvmflow {

namespace fs = std::filesystem;

double article_split_score(std::int64_t article_id, std::uint64_t seed) {
  // SHA-256 rather than a cheap hash: consecutive article ids must still land uniformly.
  std::string digest = sha256_hex("seq.window:" + std::to_string(seed) + ":" + std::to_string(article_id));
  std::uint64_t top = std::stoull(digest.substr(0, 13), nullptr, 16);   // 52 bits
  return static_cast<double>(top) / static_cast<double>(std::uint64_t{1} << 52);
}

namespace {

struct ChunkRef {
  std::int64_t position;
  std::size_t stream_row;   // row in the input stream (= row of the input's vectors.npy when it has one)
};

// What the first pass learns about the input: chunk ids and positions per article, and where
// its vectors are.
struct ChunkIndex {
  std::vector<std::string> ids;   // by stream row
  std::map<std::int64_t, std::vector<ChunkRef>> articles;
  std::size_t rows = 0;
  std::size_t inline_dim = 0;     // width of vectors carried in the batches themselves
  bool in_vectors_file = true;    // every row's vector is row `stream_row` of the input's vectors.npy
};

ChunkIndex index_chunks(const StageInput& chunks, const std::string& where) {
  ChunkIndex index;
  chunks.for_each_batch(
      [&](const Batch& batch) {
        if (batch.rows() == 0) return;
        batch.check_consistent(where);
        if (batch.vector_file_row != static_cast<std::int64_t>(index.rows)) {
          index.in_vectors_file = false;
          if (batch.dim == 0)
            throw Error(where, "input chunks carry no vectors", "put an encode.* stage between the chunker and seq.window");
          if (index.inline_dim != 0 && batch.dim != index.inline_dim)
            throw Error(where, "input vectors change width from " + std::to_string(index.inline_dim) + " to " +
                                   std::to_string(batch.dim),
                        "feed seq.window from a single encoder");
          index.inline_dim = batch.dim;
        }
        for (const char* column : {"article_id", "position"})
          if (!batch.ints.count(column))
            throw Error(where, std::string("input chunks have no integer column '") + column + "'",
                        "feed seq.window from an encode.* stage over chunk.text output");
        const auto& article_ids = batch.int_column("article_id");
        const auto& positions = batch.int_column("position");
        for (std::size_t r = 0; r < batch.rows(); ++r) {
          index.articles[article_ids[r]].push_back({positions[r], index.rows + r});
          index.ids.push_back(batch.ids[r]);
        }
        index.rows += batch.rows();
      },
      /*with_vectors=*/false);
  if (index.rows > 0 && index.in_vectors_file && chunks.dir.empty())
    throw Error(where, "input refers to a vectors.npy but names no artifact folder");
  return index;
}

// Writes `dir`/vectors.npy with the input's rows in the order `file_rows` gives (stream rows),
// or links the input's own file when `file_rows` is empty and it has one.
void write_vectors(const StageInput& chunks, const ChunkIndex& index, const std::vector<std::size_t>& file_rows,
                   const fs::path& dir, const std::string& where) {
  const fs::path target = dir / VectorFile::kFileName;
  fs::path source = chunks.dir / VectorFile::kFileName;
  fs::path stream_copy;
  if (!index.in_vectors_file) {
    // Vectors travel inside the batches: lay them out in stream order first.
    stream_copy = dir / "vectors.stream.npy";
    NpyWriter writer(stream_copy, index.inline_dim);
    chunks.for_each_batch([&](const Batch& b) {
      if (b.rows()) writer.append(b.vectors.data(), b.rows());
    });
    writer.close();
    source = stream_copy;
  } else {
    VectorFile file(source);
    if (file.rows() != index.rows)
      throw Error(where, source.string() + " holds " + std::to_string(file.rows()) + " rows for " +
                             std::to_string(index.rows) + " input chunks",
                  "re-run the encode stage (lvmflow run --force <stage>)");
  }
  if (file_rows.empty()) {
    if (stream_copy.empty()) link_or_copy(source, target);
    else fs::rename(stream_copy, target);
    return;
  }
  VectorFile from(source);
  NpyWriter writer(target, from.dim());
  std::vector<float> row(from.dim());
  for (std::size_t stream_row : file_rows) {
    from.read_rows(stream_row, 1, row.data());
    writer.append(row.data(), 1);
  }
  writer.close();
  if (!stream_copy.empty()) fs::remove(stream_copy);
}

}  // namespace

std::vector<Batch> make_windows(const StageInput& chunks, const fs::path& dir, const WindowOptions& options,
                                const std::string& where, WindowStats* stats) {
  if (options.context < 1)
    throw Error(where, "context must be at least 1", "set `context:` to the number of vectors before each target, e.g. 5");
  if (!(options.val_fraction >= 0.0 && options.val_fraction < 1.0))
    throw Error(where, "val_fraction must be in [0, 1)", "set `val_fraction:` to e.g. 0.1");

  WindowStats local;
  ChunkIndex index = index_chunks(chunks, where);
  local.chunks = index.rows;
  local.articles = index.articles.size();

  const std::size_t n = options.context;
  std::vector<std::int64_t> eligible;
  bool consecutive = true;   // every eligible article's chunks are consecutive stream rows in position order
  for (auto& [article_id, refs] : index.articles) {
    std::sort(refs.begin(), refs.end(),
              [](const ChunkRef& a, const ChunkRef& b) { return a.position < b.position; });
    for (std::size_t i = 1; i < refs.size(); ++i)
      if (refs[i].position == refs[i - 1].position)
        throw Error(where, "article " + std::to_string(article_id) + " has position " +
                               std::to_string(refs[i].position) + " twice",
                    "feed seq.window each chunk once (check for duplicated inputs)");
    if (refs.size() < n + 1) {
      ++local.articles_too_short;
      continue;
    }
    eligible.push_back(article_id);
    for (std::size_t i = 1; i < refs.size(); ++i)
      consecutive = consecutive && refs[i].stream_row == refs[i - 1].stream_row + 1;
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

  // Row of each chunk in the window artifact's vectors.npy: its stream row when articles are
  // already consecutive, else its place in a rewritten (article, position) order.
  std::vector<std::size_t> file_rows;
  if (!consecutive)
    for (std::int64_t article_id : eligible)
      for (const ChunkRef& ref : index.articles[article_id]) file_rows.push_back(ref.stream_row);
  if (index.rows > 0) write_vectors(chunks, index, file_rows, dir, where);
  local.vectors_linked = consecutive && index.in_vectors_file && index.rows > 0;

  std::vector<Batch> out;
  Batch current;
  auto start_batch = [&] {
    current = Batch{};
    for (const char* column : {"article_id", "target_position", "split", "context", "target_row"}) current.ints[column];
  };
  start_batch();
  std::size_t next_file_row = 0;
  for (std::int64_t article_id : eligible) {
    const auto& refs = index.articles[article_id];
    const bool val = is_val[article_id];
    ++(val ? local.articles_val : local.articles_train);
    for (std::size_t t = n; t < refs.size(); ++t) {
      const ChunkRef& target = refs[t];
      current.ids.push_back(index.ids[target.stream_row]);
      current.ints["article_id"].push_back(article_id);
      current.ints["target_position"].push_back(target.position);
      current.ints["split"].push_back(val ? kValSplit : kTrainSplit);
      current.ints["context"].push_back(static_cast<std::int64_t>(n));   // makes the layout self-describing
      const std::size_t row = consecutive ? target.stream_row : next_file_row + t;
      current.ints["target_row"].push_back(static_cast<std::int64_t>(row));
      ++(val ? local.windows_val : local.windows_train);
      if (current.rows() == options.rows_per_batch) {
        out.push_back(std::move(current));
        start_batch();
      }
    }
    next_file_row += refs.size();
  }
  if (current.rows() > 0) out.push_back(std::move(current));
  for (std::size_t i = 0; i < out.size(); ++i) out[i].seq = i;
  if (stats) *stats = local;
  return out;
}

}  // namespace lvmflow
