#pragma once
// A FAISS index over chunk vectors, as the retrieve.* stages build, store, load and search it.
// FAISS headers stay in vector_index.cpp, and every faiss::FaissException is turned into an
// lvmflow::Error there, so the stages deal with one error type and no FAISS types.
//
// On disk (one folder): index.faiss (FAISS's own format: faiss.read_index opens it) and
// index.json (dimension, count, factory string, whether vectors were L2-normalised).
// The metric is always inner product; with `normalize` (the default) that is cosine.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace faiss {
struct Index;
}

namespace lvmflow {

struct IndexOptions {
  // `Flat` (exact), `IVF` (-> IVF<nlist>,Flat), `HNSW` (-> HNSW<hnsw_m>), `IVF,<codec>`
  // (nlist filled in, e.g. IVF,PQ64), or any FAISS index_factory string.
  std::string index = "Flat";
  std::size_t nlist = 0;              // IVF lists; 0 = auto_nlist(count)
  std::size_t nprobe = 16;            // IVF lists visited per query (stored in the index)
  std::size_t hnsw_m = 32;            // HNSW links per node
  std::size_t ef_construction = 40;   // HNSW build-time beam (FAISS default)
  std::size_t ef_search = 64;         // HNSW search-time beam (stored in the index)
  bool normalize = true;              // L2-normalise vectors, so inner product = cosine
  std::size_t threads = 0;            // OpenMP threads for FAISS; 0 = OpenMP's default
};

// About 4*sqrt(count) lists (FAISS's rule of thumb), but never fewer than 39 training points
// per list, below which k-means is unreliable (and FAISS warns).
std::size_t auto_nlist(std::size_t count);
// The FAISS factory string that `options.index` means for `count` vectors.
std::string faiss_factory_string(const IndexOptions& options, std::size_t count);

// Scales each row to unit length (zero rows stay zero).
void normalize_rows(float* vectors, std::size_t rows, std::size_t dim);

struct SearchHits {
  std::size_t queries = 0;
  std::size_t k = 0;
  std::vector<float> scores;        // queries * k, best first
  std::vector<std::int64_t> rows;   // queries * k index rows; -1 where fewer than k were found
  const std::int64_t* rows_of(std::size_t query) const { return rows.data() + query * k; }
  const float* scores_of(std::size_t query) const { return scores.data() + query * k; }
};

class VectorIndex {
 public:
  VectorIndex();
  VectorIndex(VectorIndex&&) noexcept;
  VectorIndex& operator=(VectorIndex&&) noexcept;
  ~VectorIndex();

  // Trains (when the index type needs it) and fills an index with `count` rows of `vectors`.
  // With options.normalize the rows are normalised in place first, so the caller can store
  // exactly what was indexed. `cancelled` is polled between slices of the add.
  static VectorIndex build(std::vector<float>& vectors, std::size_t count, std::size_t dim,
                           const IndexOptions& options, const std::string& where,
                           const std::function<bool()>& cancelled = {});
  // The same in steps, for inputs streamed batch by batch: create() makes the empty index for
  // `count` rows (its factory string may depend on the count), train() fits it on a sample
  // when needs_training(), add() appends rows (normalised in place first, like build()).
  static VectorIndex create(std::size_t count, std::size_t dim, const IndexOptions& options,
                            const std::string& where);
  bool needs_training() const;
  void train(float* sample, std::size_t rows, const std::string& where);
  void add(float* rows, std::size_t count, const std::string& where);
  // Writes index.faiss and index.json into `dir`.
  void save(const std::filesystem::path& dir, const std::string& where) const;
  // Reads what save() wrote. With `mmap`, inverted lists of IVF indexes stay on disk and are
  // mapped (FAISS's IO_FLAG_MMAP); FAISS 1.7 reads other index types into memory.
  static VectorIndex load(const std::filesystem::path& dir, bool mmap, const std::string& where);

  // Search-time knobs; 0 keeps the stored value. Throws when the knob does not apply to this
  // index type. Not thread-safe: call before searching.
  void set_nprobe(std::size_t nprobe, const std::string& where);
  void set_ef_search(std::size_t ef_search, const std::string& where);
  // OpenMP threads each search may use (0 = OpenMP's default). FAISS parallelises a search
  // over its queries; a map stage already running batches in parallel may want 1.
  void set_threads(std::size_t threads) { threads_ = threads; }

  // Top-k rows for `count` queries of width `dim` (normalised first when the index is).
  // Thread-safe: concurrent searches on one index are fine.
  SearchHits search(const float* queries, std::size_t count, std::size_t dim, std::size_t k,
                    const std::string& where) const;

  std::size_t dim() const { return dim_; }
  std::size_t size() const { return count_; }
  bool normalized() const { return normalized_; }
  // True when search is exhaustive, so its results are the exact top-k.
  bool exact() const;
  // The stored rows of an exact index, [size() x dim()] (normalised when the index is);
  // throws lvmflow::Error for an approximate one.
  std::vector<float> vectors(const std::string& where) const;
  bool memory_mapped() const;
  const std::string& factory() const { return factory_; }
  // The factory string plus its search knobs, e.g. "IVF1024,Flat (nprobe 16)".
  std::string describe() const;

 private:
  std::unique_ptr<faiss::Index> index_;
  std::string factory_;
  std::size_t dim_ = 0;
  std::size_t count_ = 0;
  bool normalized_ = false;
  std::size_t threads_ = 0;
};

// Checks that every value is finite; throws lvmflow::Error naming the row (`row_name(i)`).
void check_finite(const float* vectors, std::size_t rows, std::size_t dim, const std::string& where,
                  const std::function<std::string(std::size_t)>& row_name);

}  // namespace lvmflow
