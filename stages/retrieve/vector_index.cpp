#include "stages/retrieve/vector_index.hpp"

#include <faiss/AutoTune.h>
#include <faiss/IVFlib.h>
#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexFlatCodes.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/invlists/OnDiskInvertedLists.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "pipeline/error.hpp"
#include "stages/common/json.hpp"

namespace lvmflow {
namespace {

constexpr const char* kIndexFile = "index.faiss";
constexpr const char* kMetaFile = "index.json";
constexpr int kMetaFormat = 1;

// FaissException::what() reads "Error in <signature> at <file>:<line>: <message>"; users
// only need the message.
std::string faiss_message(const faiss::FaissException& e) {
  std::string m = e.msg;
  if (m.rfind("Error in ", 0) == 0) {
    auto at = m.find(" at ");
    auto colon = at == std::string::npos ? at : m.find(": ", at);
    if (colon != std::string::npos) m = m.substr(colon + 2);
  }
  return m;
}

// Runs a FAISS call and turns its exceptions into one clear lvmflow::Error.
template <class F>
auto call_faiss(const std::string& where, const std::string& doing, const std::string& fix, F&& f) {
  try {
    return f();
  } catch (const faiss::FaissException& e) {
    throw Error(where, doing + " failed: " + faiss_message(e), fix);
  } catch (const std::bad_alloc&) {
    throw Error(where, doing + " failed: out of memory",
                "use a compressed index such as IVF,PQ64 or index fewer vectors");
  }
}

// Sets the calling thread's OpenMP team size for the FAISS calls in its scope. The setting
// is per thread, so concurrent searches from different pipeline threads do not interfere.
class OmpThreads {
 public:
  explicit OmpThreads(std::size_t threads) : saved_(omp_get_max_threads()) {
    if (threads) omp_set_num_threads(static_cast<int>(threads));
  }
  ~OmpThreads() { omp_set_num_threads(saved_); }
  OmpThreads(const OmpThreads&) = delete;
  OmpThreads& operator=(const OmpThreads&) = delete;

 private:
  int saved_;
};

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// The HNSW index inside `index`, also under a pre-transform (e.g. PCA64,HNSW32); null if none.
faiss::IndexHNSW* find_hnsw(faiss::Index* index) {
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index)) return hnsw;
  if (auto* pre = dynamic_cast<faiss::IndexPreTransform*>(index)) return find_hnsw(pre->index);
  return nullptr;
}

}  // namespace

std::size_t auto_nlist(std::size_t count) {
  auto by_rule = static_cast<std::size_t>(std::lround(4.0 * std::sqrt(static_cast<double>(count))));
  return std::max<std::size_t>(1, std::min(by_rule, count / 39));
}

std::string faiss_factory_string(const IndexOptions& options, std::size_t count) {
  const std::size_t nlist = options.nlist ? options.nlist : auto_nlist(count);
  const std::string& name = options.index;
  if (name == "IVF") return "IVF" + std::to_string(nlist) + ",Flat";
  if (name == "HNSW") return "HNSW" + std::to_string(options.hnsw_m);
  if (starts_with(name, "IVF,")) return "IVF" + std::to_string(nlist) + name.substr(3);
  return name;   // "Flat" and any other FAISS factory string
}

void normalize_rows(float* vectors, std::size_t rows, std::size_t dim) {
  for (std::size_t r = 0; r < rows; ++r) {
    float* v = vectors + r * dim;
    double norm2 = 0;
    for (std::size_t j = 0; j < dim; ++j) norm2 += double(v[j]) * v[j];
    if (norm2 <= 0) continue;
    const float inv = static_cast<float>(1.0 / std::sqrt(norm2));
    for (std::size_t j = 0; j < dim; ++j) v[j] *= inv;
  }
}

void check_finite(const float* vectors, std::size_t rows, std::size_t dim, const std::string& where,
                  const std::function<std::string(std::size_t)>& row_name) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < dim; ++j)
      if (!std::isfinite(vectors[r * dim + j]))
        throw Error(where, "vector of " + row_name(r) + " has a non-finite value (NaN or inf) at " +
                               "component " + std::to_string(j),
                    "check the stage that produced these vectors");
}

VectorIndex::VectorIndex() = default;
VectorIndex::VectorIndex(VectorIndex&&) noexcept = default;
VectorIndex& VectorIndex::operator=(VectorIndex&&) noexcept = default;
VectorIndex::~VectorIndex() = default;

namespace {
const std::string kIndexFix =
    "use Flat, IVF, HNSW, IVF,PQ<m> (m dividing the dimension) or a valid FAISS index_factory string";
}

VectorIndex VectorIndex::create(std::size_t count, std::size_t dim, const IndexOptions& options,
                                const std::string& where) {
  if (count == 0 || dim == 0)
    throw Error(where, "no vectors to index (" + std::to_string(count) + " rows of width " +
                           std::to_string(dim) + ")",
                "give retrieve.index a stage that outputs vectors, e.g. encode.gtr_t5");
  VectorIndex out;
  out.threads_ = options.threads;
  out.factory_ = faiss_factory_string(options, count);
  out.dim_ = dim;
  out.normalized_ = options.normalize;
  faiss::Index* raw = call_faiss(where, "creating FAISS index '" + out.factory_ + "'", kIndexFix, [&] {
    return faiss::index_factory(static_cast<int>(dim), out.factory_.c_str(),
                                faiss::METRIC_INNER_PRODUCT);
  });
  out.index_.reset(raw);

  if (auto* ivf = faiss::ivflib::try_extract_index_ivf(out.index_.get())) {
    if (ivf->nlist > count)
      throw Error(where, "IVF index with " + std::to_string(ivf->nlist) + " lists over only " +
                             std::to_string(count) + " vectors",
                  "lower `nlist:` (0 picks about 4*sqrt(count)) or use `index: Flat`");
    ivf->nprobe = std::min<std::size_t>(options.nprobe, ivf->nlist);
    // Polysemous training reorders PQ codes for Hamming pre-filtering, which lvmflow never
    // uses; it dominates IVF-PQ training time (seconds even on a few thousand vectors).
    if (auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(ivf)) ivfpq->do_polysemous_training = false;
  }
  if (auto* hnsw = find_hnsw(out.index_.get())) {
    hnsw->hnsw.efConstruction = static_cast<int>(options.ef_construction);
    hnsw->hnsw.efSearch = static_cast<int>(options.ef_search);
  }
  // Flat storage is one std::vector grown by each add: reserved up front, adding batches never
  // reallocates (a reallocation holds old and new blocks at once, up to 3x the vectors).
  if (auto* flat = dynamic_cast<faiss::IndexFlatCodes*>(out.index_.get()))
    flat->codes.reserve(count * flat->code_size);
  return out;
}

bool VectorIndex::needs_training() const { return !index_->is_trained; }

void VectorIndex::train(float* sample, std::size_t rows, const std::string& where) {
  const OmpThreads threads(threads_);
  if (normalized_) normalize_rows(sample, rows, dim_);
  call_faiss(where, "training FAISS index '" + factory_ + "'", kIndexFix,
             [&] { index_->train(static_cast<faiss::Index::idx_t>(rows), sample); });
}

void VectorIndex::add(float* rows, std::size_t count, const std::string& where) {
  const OmpThreads threads(threads_);
  if (normalized_) normalize_rows(rows, count, dim_);
  call_faiss(where, "adding vectors to FAISS index '" + factory_ + "'", kIndexFix,
             [&] { index_->add(static_cast<faiss::Index::idx_t>(count), rows); });
  count_ += count;
}

VectorIndex VectorIndex::build(std::vector<float>& vectors, std::size_t count, std::size_t dim,
                               const IndexOptions& options, const std::string& where,
                               const std::function<bool()>& cancelled) {
  if (vectors.size() != count * dim)
    throw Error(where, "vector block has " + std::to_string(vectors.size()) + " floats for " +
                           std::to_string(count) + " rows of width " + std::to_string(dim));
  VectorIndex out = create(count, dim, options, where);
  if (options.normalize) normalize_rows(vectors.data(), count, dim);
  out.normalized_ = false;   // normalised above, in place for the caller
  if (out.needs_training()) out.train(vectors.data(), count, where);
  // Add in slices so a cancelled run stops within a slice rather than after the whole build.
  const std::size_t slice = 16384;
  for (std::size_t begin = 0; begin < count; begin += slice) {
    if (cancelled && cancelled()) throw Error(where, "cancelled while building the index");
    out.add(vectors.data() + begin * dim, std::min(slice, count - begin), where);
  }
  out.normalized_ = options.normalize;
  return out;
}

void VectorIndex::save(const std::filesystem::path& dir, const std::string& where) const {
  const auto path = dir / kIndexFile;
  call_faiss(where, "writing " + path.string(), "check free disk space and folder permissions",
             [&] { faiss::write_index(index_.get(), path.c_str()); });
  Json meta = Json::Object{};
  meta["format"] = Json(kMetaFormat);
  meta["factory"] = Json(factory_);
  meta["metric"] = Json("inner_product");
  meta["normalized"] = Json(normalized_);
  meta["dim"] = Json(static_cast<std::uint64_t>(dim_));
  meta["count"] = Json(static_cast<std::uint64_t>(count_));
  meta["exact"] = Json(exact());
  write_json_file((dir / kMetaFile).string(), meta);
}

VectorIndex VectorIndex::load(const std::filesystem::path& dir, bool mmap, const std::string& where) {
  const auto path = dir / kIndexFile;
  const auto meta_path = dir / kMetaFile;
  for (const auto& p : {path, meta_path})
    if (!std::filesystem::exists(p))
      throw Error(where, "missing " + p.string(),
                  "the input must be a retrieve.index stage; rerun it if its folder was damaged");
  const Json meta = read_json_file(meta_path.string());
  const std::string mw = meta_path.string();
  if (meta.at("format", mw).as_int(mw) != kMetaFormat)
    throw Error(mw, "unknown index metadata format " + std::to_string(meta.at("format", mw).as_int(mw)),
                "rebuild the index with this version of lvmflow");

  VectorIndex out;
  out.factory_ = meta.at("factory", mw).as_string(mw);
  out.normalized_ = meta.at("normalized", mw).as_bool(mw);
  out.dim_ = static_cast<std::size_t>(meta.at("dim", mw).as_int(mw));
  out.count_ = static_cast<std::size_t>(meta.at("count", mw).as_int(mw));
  const int flags = mmap ? (faiss::IO_FLAG_MMAP | faiss::IO_FLAG_READ_ONLY) : 0;
  faiss::Index* raw = call_faiss(where, "reading FAISS index " + path.string(),
                                 "the file is damaged or not a FAISS index; rebuild it (delete the "
                                 "cached retrieve.index stage or rerun with --force)",
                                 [&] { return faiss::read_index(path.c_str(), flags); });
  out.index_.reset(raw);
  if (static_cast<std::size_t>(out.index_->d) != out.dim_ ||
      static_cast<std::size_t>(out.index_->ntotal) != out.count_)
    throw Error(where, path.string() + " holds " + std::to_string(out.index_->ntotal) + " vectors of " +
                           std::to_string(out.index_->d) + "-D but " + mw + " says " +
                           std::to_string(out.count_) + " of " + std::to_string(out.dim_) + "-D",
                "the index folder is inconsistent; rebuild the retrieve.index stage");
  return out;
}

void VectorIndex::set_nprobe(std::size_t nprobe, const std::string& where) {
  if (nprobe == 0) return;
  auto* ivf = faiss::ivflib::try_extract_index_ivf(index_.get());
  if (!ivf)
    throw Error(where, "nprobe applies to IVF indexes, but this index is '" + factory_ + "'",
                "remove `nprobe:` or build an IVF index");
  ivf->nprobe = std::min<std::size_t>(nprobe, ivf->nlist);
}

void VectorIndex::set_ef_search(std::size_t ef_search, const std::string& where) {
  if (ef_search == 0) return;
  auto* hnsw = find_hnsw(index_.get());
  if (!hnsw)
    throw Error(where, "ef_search applies to HNSW indexes, but this index is '" + factory_ + "'",
                "remove `ef_search:` or build an HNSW index");
  hnsw->hnsw.efSearch = static_cast<int>(ef_search);
}

SearchHits VectorIndex::search(const float* queries, std::size_t count, std::size_t dim,
                               std::size_t k, const std::string& where) const {
  if (dim != dim_)
    throw Error(where, "query vectors are " + std::to_string(dim) + "-D but the index holds " +
                           std::to_string(dim_) + "-D vectors",
                "search with vectors from the same encoder the index was built from");
  if (k == 0) throw Error(where, "k must be at least 1", "set `k:` to e.g. 20");
  SearchHits hits;
  hits.queries = count;
  hits.k = k;
  hits.scores.assign(count * k, 0.0f);
  hits.rows.assign(count * k, -1);
  if (count == 0) return hits;
  const float* x = queries;
  std::vector<float> normalized;
  if (normalized_) {
    normalized.assign(queries, queries + count * dim);
    normalize_rows(normalized.data(), count, dim);
    x = normalized.data();
  }
  static_assert(sizeof(faiss::Index::idx_t) == sizeof(std::int64_t));
  const OmpThreads threads(threads_);
  call_faiss(where, "searching FAISS index '" + factory_ + "'", "rebuild the index", [&] {
    index_->search(static_cast<faiss::Index::idx_t>(count), x, static_cast<faiss::Index::idx_t>(k),
                   hits.scores.data(), reinterpret_cast<faiss::Index::idx_t*>(hits.rows.data()));
  });
  return hits;
}

bool VectorIndex::exact() const { return dynamic_cast<const faiss::IndexFlat*>(index_.get()) != nullptr; }

std::vector<float> VectorIndex::vectors(const std::string& where) const {
  const auto* flat = dynamic_cast<const faiss::IndexFlat*>(index_.get());
  if (!flat) throw Error(where, "index '" + factory_ + "' does not keep its vectors", "use the exact reference");
  const float* xb = flat->get_xb();
  return std::vector<float>(xb, xb + count_ * dim_);
}

bool VectorIndex::memory_mapped() const {
  auto* ivf = faiss::ivflib::try_extract_index_ivf(index_.get());
  return ivf && dynamic_cast<const faiss::OnDiskInvertedLists*>(ivf->invlists) != nullptr;
}

std::string VectorIndex::describe() const {
  std::ostringstream s;
  s << factory_;
  if (auto* ivf = faiss::ivflib::try_extract_index_ivf(index_.get()))
    s << " (nprobe " << ivf->nprobe << ")";
  else if (auto* hnsw = find_hnsw(index_.get()))
    s << " (efSearch " << hnsw->hnsw.efSearch << ")";
  return s.str();
}

}  // namespace lvmflow
