#pragma once
// Raw bytes of an input file: plain, or bzip2 (detected by its "BZh" magic), including
// Wikimedia's multistream dumps, which are many bz2 streams concatenated. Decompression is
// streamed, so memory stays bounded whatever the dump size.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace lvmflow::ingest {

// How bz2 files are read. Multistream files are cut at stream starts into segments of about
// `segment_bytes` (compressed) that `workers` threads decompress in parallel; a stretch of more
// than `max_segment_bytes` without a stream start (a plain single-stream .bz2) is decompressed
// as a stream on one thread. Memory stays bounded by about workers * 6 * segment_bytes.
struct Bz2Tuning {
  std::size_t segment_bytes = std::size_t(1) << 20;
  std::size_t max_segment_bytes = std::size_t(32) << 20;
  std::size_t workers = 0;   // 0: one per hardware thread, at most 8
};

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Opens `path`; throws lvmflow::Error if it is missing, unreadable or empty.
  static std::unique_ptr<ByteSource> open(const std::filesystem::path& path, const Bz2Tuning& bz2 = {});
  // True when the file starts with the bzip2 magic "BZh" followed by a block size digit.
  static bool looks_bzip2(const std::filesystem::path& path);

  // Reads up to `n` bytes into `buf`; returns 0 only at the end of the data. Throws
  // lvmflow::Error on a damaged or truncated stream.
  virtual std::size_t read(char* buf, std::size_t n) = 0;
  virtual bool compressed() const = 0;
  // Bytes of the file itself consumed so far (compressed bytes for bz2).
  virtual std::uint64_t file_offset() const = 0;
  const std::filesystem::path& path() const { return path_; }

 protected:
  explicit ByteSource(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

}  // namespace lvmflow::ingest
