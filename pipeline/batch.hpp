#pragma once
// The unit of data that flows between stages: a small columnar table. Every row has an id
// (a chunk id, a window id, ...); named columns hold text, integers, reals, and an optional
// float32 matrix holds one vector per row. Batches carry their sequence number in the stream
// so that order can be restored after a stage ran them in parallel.
#include <cstdint>
#include <iosfwd>
#include <map>
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

// Binary stream format for a stage's stored output (batches.bin). Each record is
// length-prefixed and checksummed, so a torn tail is detected instead of being replayed.
void write_batch(std::ostream& out, const Batch& batch);
// Returns false at a clean end of stream; throws lvmflow::Error on a damaged record.
bool read_batch(std::istream& in, Batch& batch, const std::string& where);

}  // namespace lvmflow
