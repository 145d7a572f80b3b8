#pragma once
// The unit of data that flows between stages: a small columnar table. Every row has an id
// (a chunk id, a window id, ...); named columns hold text, integers, reals, and an optional
// float32 matrix holds one vector per row. Batches carry their sequence number in the stream
// so that order can be restored after a stage ran them in parallel.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lvmflow {

struct Batch {
  std::uint64_t seq = 0;   // position of this batch in its stream
  std::vector<std::string> ids;
  std::map<std::string, std::vector<std::string>> text;
  std::map<std::string, std::vector<std::int64_t>> ints;
  std::map<std::string, std::vector<double>> reals;
  std::size_t dim = 0;           // width of `vectors`; 0 when the batch carries no vectors
  std::vector<float> vectors;    // rows() * dim, row-major
  // Set by readers of a stored output whose vectors live in the artifact's vectors.npy: the
  // file row of this batch's first row (rows follow in order); -1 otherwise.
  std::int64_t vector_file_row = -1;

  std::size_t rows() const { return ids.size(); }
  const float* vector(std::size_t row) const { return vectors.data() + row * dim; }

  // Appends the rows of `other`; both must have the same columns and vector width.
  void append(const Batch& other);
  // Rows [begin, end) as a new batch (same columns).
  Batch slice(std::size_t begin, std::size_t end) const;
  // Throws lvmflow::Error if a column length differs from rows().
  void check_consistent(const std::string& where) const;

  // Column access that names the missing column in the error.
  const std::vector<std::string>& text_column(const std::string& name) const;
  const std::vector<std::int64_t>& int_column(const std::string& name) const;
  const std::vector<double>& real_column(const std::string& name) const;
};

class VectorFile;

// Binary stream format for a stage's stored output (batches.bin). Each record is
// length-prefixed and checksummed, so a torn tail is detected instead of being replayed.
// A record holds its vectors inline, or - when the stage writes them into its own vectors.npy
// (StageInfo::vectors_file) - only the file row of its first vector, so an artifact holds
// each vector once. `vectors_file_row` >= 0 selects the second form.
void write_batch(std::ostream& out, const Batch& batch, std::int64_t vectors_file_row = -1);
// Returns false at a clean end of stream; throws lvmflow::Error on a damaged record. Records
// that refer to vectors.npy take their rows from `vectors`; with `vectors` null they come
// back without vectors (dim 0) and with vector_file_row set. Records of the previous format
// (lvmflow before batches.bin 2) are read as they were written: vectors inline.
bool read_batch(std::istream& in, Batch& batch, const std::string& where, const VectorFile* vectors = nullptr);

// Streams the stored output of a committed artifact folder (batches.bin, and vectors.npy for
// the records that refer to it), one batch at a time.
class ArtifactReader {
 public:
  // `with_vectors` false skips reading vectors kept in vectors.npy (see read_batch).
  explicit ArtifactReader(const std::filesystem::path& dir, bool with_vectors = true);
  ~ArtifactReader();
  bool next(Batch& batch);
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::string where_;
  std::ifstream in_;
  bool with_vectors_;
  std::unique_ptr<VectorFile> vectors_;   // opened at the first record that refers to it
};

}  // namespace lvmflow
