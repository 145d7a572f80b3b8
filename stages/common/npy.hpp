#pragma once
// NumPy .npy files (format version 1.0), little-endian float32, C order, so numpy.load opens
// what lvmflow writes. NpyWriter streams rows and patches the shape in the header at close.
// Ours because the one Debian C++ option, xtensor's xnpy.hpp (libxtensor-dev), only loads
// and dumps whole in-memory arrays and would pull xtensor in for this: lvmflow streams rows
// out (the shape is known only at close) and needs float32 C-order files only.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <vector>

namespace lvmflow {

class NpyWriter {
 public:
  // A 2-D float32 array [rows, cols]; rows are counted as they are appended.
  NpyWriter(const std::filesystem::path& path, std::size_t cols);
  void append(const float* rows_data, std::size_t rows);
  // Rewrites the header with the final row count and flushes + fsyncs the file.
  void close();
  ~NpyWriter();

 private:
  std::filesystem::path path_;
  std::ofstream out_;
  std::size_t cols_, rows_ = 0;
  bool closed_ = false;
};

struct NpyArray {
  std::vector<std::int64_t> shape;
  std::vector<float> data;
};

// Reads a float32 (or float64, converted) C-order .npy file; throws lvmflow::Error otherwise.
NpyArray read_npy(const std::filesystem::path& path);
// Writes an N-d float32 array in one go.
void write_npy(const std::filesystem::path& path, const std::vector<std::int64_t>& shape,
               const float* data);

}  // namespace lvmflow
