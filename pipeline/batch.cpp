#include "pipeline/batch.hpp"

#include <zlib.h>

#include <cstring>
#include <istream>
#include <ostream>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"
#include "pipeline/vector_file.hpp"

namespace lvmflow {

namespace {

template <class Map>
void append_columns(Map& into, const Map& from, const char* kind) {
  if (into.size() != from.size())
    throw Error("batch", std::string("appending batches with different ") + kind + " columns");
  for (auto& [name, column] : into) {
    auto it = from.find(name);
    if (it == from.end()) throw Error("batch", std::string("appending a batch without ") + kind + " column '" + name + "'");
    column.insert(column.end(), it->second.begin(), it->second.end());
  }
}

template <class Map>
Map slice_columns(const Map& from, std::size_t begin, std::size_t end) {
  Map out;
  for (const auto& [name, column] : from)
    out[name].assign(column.begin() + begin, column.begin() + end);
  return out;
}

template <class Map>
void check_columns(const Map& columns, std::size_t rows, const std::string& where) {
  for (const auto& [name, column] : columns)
    if (column.size() != rows)
      throw Error(where, "column '" + name + "' has " + std::to_string(column.size()) +
                             " values for " + std::to_string(rows) + " rows");
}

template <class Map>
const typename Map::mapped_type& find_column(const Map& columns, const std::string& name,
                                             const char* kind) {
  auto it = columns.find(name);
  if (it == columns.end())
    throw Error("batch", std::string("no ") + kind + " column '" + name + "'",
                "the stage feeding this one does not produce it; check the pipeline's inputs");
  return it->second;
}

// Little binary encoder for batches.bin; fixed-width little-endian integers.
class Encoder {
 public:
  void u64(std::uint64_t v) { bytes_.append(reinterpret_cast<const char*>(&v), 8); }
  void str(const std::string& s) { u64(s.size()); bytes_ += s; }
  void raw(const void* p, std::size_t n) { bytes_.append(static_cast<const char*>(p), n); }
  std::string& bytes() { return bytes_; }

 private:
  std::string bytes_;
};

class Decoder {
 public:
  Decoder(const std::string& bytes, const std::string& where) : bytes_(bytes), where_(where) {}
  std::uint64_t u64() {
    std::uint64_t v;
    take(&v, 8);
    return v;
  }
  std::string str() {
    std::uint64_t n = u64();
    need(n);
    std::string s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  void take(void* p, std::size_t n) {
    need(n);
    std::memcpy(p, bytes_.data() + pos_, n);
    pos_ += n;
  }

 private:
  void need(std::uint64_t n) {
    if (n > bytes_.size() - pos_) throw Error(where_, "batch record is shorter than its contents say");
  }
  const std::string& bytes_;
  std::string where_;
  std::size_t pos_ = 0;
};

constexpr std::uint64_t kBatchMagicV1 = 0x314843544142564cULL;  // "LVBATCH1": vectors always inline
constexpr std::uint64_t kBatchMagic = 0x324843544142564cULL;    // "LVBATCH2": inline or in vectors.npy
enum class VectorStorage : std::uint64_t { Inline = 0, File = 1 };
// Record bodies of format 2 are deflated (zlib level 1: text columns shrink ~2.5x at ~100 MB/s)
// when that saves bytes; the frame's fourth word is the inflated length, 0 when stored as is.
constexpr std::size_t kCompressFrom = 512;

std::string deflate_body(const std::string& body) {
  if (body.size() < kCompressFrom) return {};
  uLongf size = compressBound(body.size());
  std::string out(size, '\0');
  if (compress2(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(body.data()),
                body.size(), 1) != Z_OK || size >= body.size())
    return {};
  out.resize(size);
  return out;
}

}  // namespace

void Batch::append(const Batch& other) {
  if (rows() == 0 && text.empty() && ints.empty() && reals.empty() && dim == 0) {
    std::uint64_t keep = seq;
    *this = other;
    seq = keep;
    return;
  }
  if (other.dim != dim) throw Error("batch", "appending batches with different vector widths");
  vector_file_row = -1;
  ids.insert(ids.end(), other.ids.begin(), other.ids.end());
  append_columns(text, other.text, "text");
  append_columns(ints, other.ints, "integer");
  append_columns(reals, other.reals, "real");
  vectors.insert(vectors.end(), other.vectors.begin(), other.vectors.end());
}

Batch Batch::slice(std::size_t begin, std::size_t end) const {
  Batch out;
  out.seq = seq;
  out.ids.assign(ids.begin() + begin, ids.begin() + end);
  out.text = slice_columns(text, begin, end);
  out.ints = slice_columns(ints, begin, end);
  out.reals = slice_columns(reals, begin, end);
  out.dim = dim;
  out.vector_file_row = vector_file_row < 0 ? -1 : vector_file_row + static_cast<std::int64_t>(begin);
  if (dim) out.vectors.assign(vectors.begin() + begin * dim, vectors.begin() + end * dim);
  return out;
}

void Batch::check_consistent(const std::string& where) const {
  check_columns(text, rows(), where);
  check_columns(ints, rows(), where);
  check_columns(reals, rows(), where);
  if (vectors.size() != rows() * dim)
    throw Error(where, "vector block has " + std::to_string(vectors.size()) + " floats for " +
                           std::to_string(rows()) + " rows of width " + std::to_string(dim));
}

const std::vector<std::string>& Batch::text_column(const std::string& name) const {
  return find_column(text, name, "text");
}
const std::vector<std::int64_t>& Batch::int_column(const std::string& name) const {
  return find_column(ints, name, "integer");
}
const std::vector<double>& Batch::real_column(const std::string& name) const {
  return find_column(reals, name, "real");
}

void write_batch(std::ostream& out, const Batch& b, std::int64_t vectors_file_row) {
  Encoder e;
  e.u64(b.seq);
  e.u64(b.ids.size());
  for (const auto& id : b.ids) e.str(id);
  e.u64(b.text.size());
  for (const auto& [name, col] : b.text) {
    e.str(name);
    for (const auto& v : col) e.str(v);
  }
  e.u64(b.ints.size());
  for (const auto& [name, col] : b.ints) {
    e.str(name);
    e.raw(col.data(), col.size() * sizeof(std::int64_t));
  }
  e.u64(b.reals.size());
  for (const auto& [name, col] : b.reals) {
    e.str(name);
    e.raw(col.data(), col.size() * sizeof(double));
  }
  e.u64(b.dim);
  if (vectors_file_row >= 0 && b.dim > 0) {
    e.u64(static_cast<std::uint64_t>(VectorStorage::File));
    e.u64(static_cast<std::uint64_t>(vectors_file_row));
  } else {
    e.u64(static_cast<std::uint64_t>(VectorStorage::Inline));
    e.raw(b.vectors.data(), b.vectors.size() * sizeof(float));
  }

  const std::string deflated = deflate_body(e.bytes());
  const std::string& stored = deflated.empty() ? e.bytes() : deflated;
  Encoder frame;
  frame.u64(kBatchMagic);
  frame.u64(stored.size());
  frame.u64(fnv1a64(stored));
  frame.u64(deflated.empty() ? 0 : e.bytes().size());
  out.write(frame.bytes().data(), static_cast<std::streamsize>(frame.bytes().size()));
  out.write(stored.data(), static_cast<std::streamsize>(stored.size()));
  if (!out) throw Error("batch", "could not write batch record", "check free disk space");
}

bool read_batch(std::istream& in, Batch& b, const std::string& where, const VectorFile* vectors) {
  std::uint64_t head[3];
  in.read(reinterpret_cast<char*>(head), sizeof head);
  if (in.gcount() == 0 && in.eof()) return false;
  if (in.gcount() != sizeof head || (head[0] != kBatchMagic && head[0] != kBatchMagicV1))
    throw Error(where, "damaged batch record header", "delete the artifact and re-run the stage");
  std::uint64_t inflated_size = 0;
  if (head[0] == kBatchMagic) {
    in.read(reinterpret_cast<char*>(&inflated_size), sizeof inflated_size);
    if (in.gcount() != sizeof inflated_size) throw Error(where, "damaged batch record header", "delete the artifact and re-run the stage");
  }
  std::string body(head[1], '\0');
  in.read(body.data(), static_cast<std::streamsize>(body.size()));
  if (static_cast<std::uint64_t>(in.gcount()) != head[1] || fnv1a64(body) != head[2])
    throw Error(where, "damaged batch record (truncated or checksum mismatch)",
                "delete the artifact and re-run the stage");
  if (head[0] == kBatchMagic && inflated_size) {
    std::string inflated(inflated_size, '\0');
    uLongf size = inflated_size;
    if (uncompress(reinterpret_cast<Bytef*>(inflated.data()), &size, reinterpret_cast<const Bytef*>(body.data()),
                   body.size()) != Z_OK || size != inflated_size)
      throw Error(where, "damaged batch record (does not inflate)", "delete the artifact and re-run the stage");
    body.swap(inflated);
  }
  Decoder d(body, where);
  b = Batch{};
  b.seq = d.u64();
  std::uint64_t rows = d.u64();
  b.ids.resize(rows);
  for (auto& id : b.ids) id = d.str();
  for (std::uint64_t n = d.u64(); n--;) {
    auto& col = b.text[d.str()];
    col.resize(rows);
    for (auto& v : col) v = d.str();
  }
  for (std::uint64_t n = d.u64(); n--;) {
    auto& col = b.ints[d.str()];
    col.resize(rows);
    d.take(col.data(), rows * sizeof(std::int64_t));
  }
  for (std::uint64_t n = d.u64(); n--;) {
    auto& col = b.reals[d.str()];
    col.resize(rows);
    d.take(col.data(), rows * sizeof(double));
  }
  b.dim = d.u64();
  const auto storage = head[0] == kBatchMagicV1 ? VectorStorage::Inline : static_cast<VectorStorage>(d.u64());
  if (storage == VectorStorage::Inline) {
    b.vectors.resize(rows * b.dim);
    d.take(b.vectors.data(), b.vectors.size() * sizeof(float));
    return true;
  }
  if (storage != VectorStorage::File) throw Error(where, "batch record names an unknown vector storage", "delete the artifact and re-run the stage");
  b.vector_file_row = static_cast<std::int64_t>(d.u64());
  if (!vectors) {
    b.dim = 0;
    return true;
  }
  if (vectors->dim() != b.dim)
    throw Error(where, "records hold " + std::to_string(b.dim) + "-D vectors but " + vectors->path().string() +
                           " holds " + std::to_string(vectors->dim()) + "-D rows",
                "delete the artifact and re-run the stage");
  b.vectors.resize(rows * b.dim);
  vectors->read_rows(static_cast<std::size_t>(b.vector_file_row), rows, b.vectors.data());
  return true;
}

ArtifactReader::ArtifactReader(const std::filesystem::path& dir, bool with_vectors)
    : dir_(dir), where_((dir / "batches.bin").string()), with_vectors_(with_vectors) {
  in_.open(dir / "batches.bin", std::ios::binary);
  if (!in_) throw Error(where_, "cannot open stored output", "re-run the stage that wrote it (lvmflow run --force <stage>)");
}

ArtifactReader::~ArtifactReader() = default;

bool ArtifactReader::next(Batch& batch) {
  if (!read_batch(in_, batch, where_, vectors_.get())) return false;
  if (batch.vector_file_row >= 0 && batch.dim == 0 && with_vectors_ && !vectors_) {
    // The first record that refers to vectors.npy: open it and read this record again.
    vectors_ = std::make_unique<VectorFile>(dir_ / VectorFile::kFileName);
    std::vector<float> rows(batch.rows() * vectors_->dim());
    vectors_->read_rows(static_cast<std::size_t>(batch.vector_file_row), batch.rows(), rows.data());
    batch.dim = vectors_->dim();
    batch.vectors = std::move(rows);
  }
  return true;
}

}  // namespace lvmflow
