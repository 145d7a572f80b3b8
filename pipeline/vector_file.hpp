#pragma once
// Read side of a stage's vectors.npy (float32, C order, 2-D: one row per output row), the one
// place an artifact keeps its vectors. Rows are read with pread, not a memory map: a training
// epoch gathers every row in random order, and mapped pages would all count toward the
// process's resident memory, while the kernel's page cache holds them just as well outside it.
// Thread-safe (pread has no shared file offset).
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace lvmflow {

class VectorFile {
 public:
  static constexpr const char* kFileName = "vectors.npy";

  // Opens `path`; throws lvmflow::Error when it is missing or not a 2-D float32 C-order .npy.
  explicit VectorFile(const std::filesystem::path& path);
  ~VectorFile();
  VectorFile(const VectorFile&) = delete;
  VectorFile& operator=(const VectorFile&) = delete;

  std::size_t rows() const { return rows_; }
  std::size_t dim() const { return dim_; }
  const std::filesystem::path& path() const { return path_; }
  // Copies rows [first, first + count) into `out` (count * dim floats); throws on a short read.
  void read_rows(std::size_t first, std::size_t count, float* out) const;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::size_t rows_ = 0, dim_ = 0;
  std::uint64_t data_offset_ = 0;
  friend class VectorRows;
};

// Rows of vectors addressable by pointer: a read-only memory map of a vectors.npy (training
// and evaluation gather windows at random), or rows held in memory (tests, small inputs).
// Mappings are shared per file (device, inode, size, mtime), so stages of one run that read the same
// vectors - lvm.train, lvm.eval and lvm.predict over one seq.window, whose vectors.npy is a
// hard link of the encoder's - hold its pages once.
class VectorRows {
 public:
  static std::shared_ptr<const VectorRows> map(const std::filesystem::path& npy);
  static std::shared_ptr<const VectorRows> in_memory(std::vector<float> values, std::size_t dim);
  ~VectorRows();
  VectorRows(const VectorRows&) = delete;
  VectorRows& operator=(const VectorRows&) = delete;

  std::size_t rows() const { return rows_; }
  std::size_t dim() const { return dim_; }
  const float* row(std::size_t i) const { return data_ + i * dim_; }
  // Readers report how many rows they just read. Every kForgetAfterRows rows the mapping's
  // page-table entries are dropped (MADV_DONTNEED): the rows stay in the kernel's page cache
  // and fault back in on the next read, but stop counting toward the process's resident
  // memory, which a training epoch sweeping the whole file would otherwise grow to the file's
  // size. Safe while other threads read the same mapping. No-op for rows in memory.
  // Measured at 760k chunks: with 64k rows the mapping still held 1.4 GiB resident, because
  // each fault maps its neighbours too (fault-around); 16k rows with MADV_RANDOM keep it small.
  static constexpr std::size_t kForgetAfterRows = 1 << 14;
  void note_reads(std::size_t rows) const;

 private:
  VectorRows() = default;
  std::vector<float> owned_;
  void* mapping_ = nullptr;
  std::size_t mapping_bytes_ = 0;
  const float* data_ = nullptr;
  std::size_t rows_ = 0, dim_ = 0;
  mutable std::atomic<std::size_t> rows_read_{0};
};

// Makes `to` the same file as `from` without copying bytes (a hard link: the store then holds
// the rows once, and the link survives moving the store); copies only where links are
// impossible (another file system).
void link_or_copy(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace lvmflow
