#include "stages/ingest/byte_source.hpp"

#include <bzlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <vector>
#include <cstring>

#include "pipeline/error.hpp"

namespace lvmflow::ingest {
namespace {

constexpr std::size_t kFileChunk = 1 << 16;

struct FileCloser {
  void operator()(std::FILE* f) const { if (f) std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

FilePtr open_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw Error(path.string(), "input file does not exist", "check the stage's `path` param");
  if (std::filesystem::is_directory(path, ec))
    throw Error(path.string(), "is a folder, expected a file",
                "point `path` at the dump file, or set format: txt for a folder of .txt files");
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f)
    throw Error(path.string(), std::string("cannot open: ") + std::strerror(errno),
                "check the file's permissions");
  if (std::filesystem::file_size(path, ec) == 0 && !ec)
    throw Error(path.string(), "input file is empty", "point `path` at a non-empty dump");
  return f;
}

class PlainFileSource : public ByteSource {
 public:
  explicit PlainFileSource(const std::filesystem::path& path)
      : ByteSource(path), file_(open_file(path)) {}

  std::size_t read(char* buf, std::size_t n) override {
    std::size_t got = std::fread(buf, 1, n, file_.get());
    if (got == 0 && std::ferror(file_.get()))
      throw Error(path_.string() + " (byte " + std::to_string(offset_) + ")",
                  std::string("read failed: ") + std::strerror(errno));
    offset_ += got;
    return got;
  }
  bool compressed() const override { return false; }
  std::uint64_t file_offset() const override { return offset_; }

 private:
  FilePtr file_;
  std::uint64_t offset_ = 0;
};

// Decompresses one bz2 stream after another until the file ends, so a multistream dump reads
// as one continuous text. A file that ends inside a stream is reported as truncated.
class Bz2FileSource : public ByteSource {
 public:
  explicit Bz2FileSource(const std::filesystem::path& path)
      : ByteSource(path), file_(open_file(path)), in_(kFileChunk) {}
  ~Bz2FileSource() override { end_stream(); }

  std::size_t read(char* buf, std::size_t n) override {
    while (true) {
      if (stream_.avail_in == 0 && !file_eof_) refill();
      if (!stream_open_) {
        if (stream_.avail_in == 0 && file_eof_) return 0;   // clean end after a whole stream
        begin_stream();
      }
      stream_.next_out = buf;
      stream_.avail_out = static_cast<unsigned>(std::min<std::size_t>(n, 1u << 30));
      int rc = BZ2_bzDecompress(&stream_);
      std::size_t produced = static_cast<std::size_t>(stream_.next_out - buf);
      if (rc == BZ_STREAM_END) {
        end_stream();
      } else if (rc != BZ_OK) {
        throw Error(where(), describe(rc),
                    "the .bz2 file is damaged; download it again or check it with `bzip2 -t`");
      } else if (produced == 0 && stream_.avail_in == 0 && file_eof_) {
        throw Error(where(), "truncated bz2 stream: the file ends in the middle of compressed data",
                    "the download is incomplete; fetch the dump again or check it with `bzip2 -t`");
      }
      if (produced > 0) return produced;
    }
  }
  bool compressed() const override { return true; }
  std::uint64_t file_offset() const override { return consumed_ - stream_.avail_in; }

 private:
  std::string where() const {
    return path_.string() + " (compressed byte " + std::to_string(file_offset()) + ")";
  }
  static std::string describe(int rc) {
    switch (rc) {
      case BZ_DATA_ERROR_MAGIC: return "data is not a bz2 stream (bad magic after the previous stream)";
      case BZ_DATA_ERROR: return "bz2 data is corrupt (checksum or block error)";
      case BZ_MEM_ERROR: return "out of memory while decompressing";
      default: return "bz2 decompression failed (code " + std::to_string(rc) + ")";
    }
  }
  void refill() {
    std::size_t got = std::fread(in_.data(), 1, in_.size(), file_.get());
    if (got == 0) {
      if (std::ferror(file_.get()))
        throw Error(where(), std::string("read failed: ") + std::strerror(errno));
      file_eof_ = true;
    }
    consumed_ += got;
    stream_.next_in = in_.data();
    stream_.avail_in = static_cast<unsigned>(got);
  }
  void begin_stream() {
    char* next_in = stream_.next_in;
    unsigned avail_in = stream_.avail_in;
    std::memset(&stream_, 0, sizeof stream_);
    if (BZ2_bzDecompressInit(&stream_, 0, 0) != BZ_OK)
      throw Error(where(), "cannot start bz2 decompression");
    stream_.next_in = next_in;
    stream_.avail_in = avail_in;
    stream_open_ = true;
  }
  void end_stream() {
    if (stream_open_) BZ2_bzDecompressEnd(&stream_);
    stream_open_ = false;
  }

  FilePtr file_;
  std::vector<char> in_;
  bz_stream stream_{};
  bool stream_open_ = false;
  bool file_eof_ = false;
  std::uint64_t consumed_ = 0;
};

}  // namespace

bool ByteSource::looks_bzip2(const std::filesystem::path& path) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) return false;
  unsigned char magic[4] = {0, 0, 0, 0};
  std::size_t got = std::fread(magic, 1, 4, f.get());
  return got == 4 && magic[0] == 'B' && magic[1] == 'Z' && magic[2] == 'h' && magic[3] >= '1' &&
         magic[3] <= '9';
}

std::unique_ptr<ByteSource> ByteSource::open(const std::filesystem::path& path) {
  open_file(path);   // existence / emptiness checks with clear errors
  if (looks_bzip2(path)) return std::make_unique<Bz2FileSource>(path);
  return std::make_unique<PlainFileSource>(path);
}

}  // namespace lvmflow::ingest
