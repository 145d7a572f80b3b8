#include "stages/ingest/byte_source.hpp"

#include <bzlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <future>
#include <thread>
#include <vector>

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

std::size_t read_some(std::FILE* f, char* buf, std::size_t n, const std::filesystem::path& path,
                      std::uint64_t offset) {
  std::size_t got = std::fread(buf, 1, n, f);
  if (got == 0 && std::ferror(f))
    throw Error(path.string() + " (byte " + std::to_string(offset) + ")",
                std::string("read failed: ") + std::strerror(errno));
  return got;
}

std::string bz2_problem(int rc) {
  switch (rc) {
    case BZ_DATA_ERROR_MAGIC: return "data is not a bz2 stream (bad magic after the previous stream)";
    case BZ_DATA_ERROR: return "bz2 data is corrupt (checksum or block error)";
    case BZ_MEM_ERROR: return "out of memory while decompressing";
    default: return "bz2 decompression failed (code " + std::to_string(rc) + ")";
  }
}

Error bz2_error(const std::filesystem::path& path, std::uint64_t offset, int rc) {
  return Error(path.string() + " (compressed byte " + std::to_string(offset) + ")", bz2_problem(rc),
               "the .bz2 file is damaged; download it again or check it with `bzip2 -t`");
}

Error bz2_truncated(const std::filesystem::path& path, std::uint64_t offset) {
  return Error(path.string() + " (compressed byte " + std::to_string(offset) + ")",
               "truncated bz2 stream: the file ends in the middle of compressed data",
               "the download is incomplete; fetch the dump again or check it with `bzip2 -t`");
}

// One bz2 decompressor that moves on to the next stream whenever one ends, so concatenated
// streams decompress as one text. Input is pushed in; output is pulled out.
class Bz2Decoder {
 public:
  ~Bz2Decoder() { end_stream(); }

  void feed(const char* data, std::size_t n) {
    stream_.next_in = const_cast<char*>(data);
    stream_.avail_in = static_cast<unsigned>(n);
  }
  std::size_t pending_input() const { return stream_.avail_in; }
  bool in_stream() const { return open_; }

  // Decompresses into buf; returns bytes produced. `consumed_before` + the bytes of the current
  // feed used so far locate errors.
  std::size_t decode(char* buf, std::size_t n, const std::filesystem::path& path, std::uint64_t feed_offset,
                     std::size_t feed_size) {
    if (!open_) begin_stream();
    stream_.next_out = buf;
    stream_.avail_out = static_cast<unsigned>(std::min<std::size_t>(n, 1u << 30));
    int rc = BZ2_bzDecompress(&stream_);
    std::size_t produced = static_cast<std::size_t>(stream_.next_out - buf);
    if (rc == BZ_STREAM_END) end_stream();
    else if (rc != BZ_OK) throw bz2_error(path, feed_offset + (feed_size - stream_.avail_in), rc);
    return produced;
  }

 private:
  void begin_stream() {
    char* next_in = stream_.next_in;
    unsigned avail_in = stream_.avail_in;
    std::memset(&stream_, 0, sizeof stream_);
    if (BZ2_bzDecompressInit(&stream_, 0, 0) != BZ_OK) throw Error("bz2", "cannot start bz2 decompression");
    stream_.next_in = next_in;
    stream_.avail_in = avail_in;
    open_ = true;
  }
  void end_stream() {
    if (open_) BZ2_bzDecompressEnd(&stream_);
    open_ = false;
  }

  bz_stream stream_{};
  bool open_ = false;
};

// Decompresses a segment of whole bz2 streams (a job of the parallel reader).
std::string decompress_segment(const std::string& segment, std::uint64_t offset, bool last,
                               const std::filesystem::path& path) {
  std::string out;
  Bz2Decoder decoder;
  decoder.feed(segment.data(), segment.size());
  std::vector<char> buf(std::size_t(1) << 20);
  while (decoder.pending_input() > 0) {
    std::size_t got = decoder.decode(buf.data(), buf.size(), path, offset, segment.size());
    out.append(buf.data(), got);
    if (got == 0 && decoder.in_stream() && decoder.pending_input() == 0) break;
  }
  // Drain output still held in the decoder after its input ran out.
  while (decoder.in_stream()) {
    std::size_t got = decoder.decode(buf.data(), buf.size(), path, offset, segment.size());
    out.append(buf.data(), got);
    if (got == 0) {
      if (last) throw bz2_truncated(path, offset + segment.size());
      // A segment always ends where the next stream starts; ending inside one means the split
      // fell on a false stream signature.
      throw Error(path.string() + " (compressed byte " + std::to_string(offset + segment.size()) + ")",
                  "bz2 stream ends unexpectedly at a segment boundary",
                  "the .bz2 file is damaged; check it with `bzip2 -t`");
    }
  }
  return out;
}

class PlainFileSource : public ByteSource {
 public:
  explicit PlainFileSource(const std::filesystem::path& path)
      : ByteSource(path), file_(open_file(path)) {}

  std::size_t read(char* buf, std::size_t n) override {
    std::size_t got = read_some(file_.get(), buf, n, path_, offset_);
    offset_ += got;
    return got;
  }
  bool compressed() const override { return false; }
  std::uint64_t file_offset() const override { return offset_; }

 private:
  FilePtr file_;
  std::uint64_t offset_ = 0;
};

// bz2 text, single stream or multistream (see Bz2Tuning). Compressed data is cut at stream
// starts into segments; up to one segment per worker is decompressed at a time on worker
// threads, and the text is handed out in file order. Past max_segment_bytes without a stream
// start, the rest is decompressed as a stream on the caller's thread instead.
class Bz2FileSource : public ByteSource {
 public:
  Bz2FileSource(const std::filesystem::path& path, const Bz2Tuning& tuning)
      : ByteSource(path), file_(open_file(path)),
        segment_bytes_(std::max<std::size_t>(tuning.segment_bytes, 16)),
        max_segment_bytes_(std::max(tuning.max_segment_bytes, segment_bytes_)),
        workers_(tuning.workers ? tuning.workers
                                : std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, 8)) {}

  std::size_t read(char* buf, std::size_t n) override {
    while (true) {
      if (streaming_) return read_streaming(buf, n);
      if (out_pos_ < out_.size()) {
        std::size_t k = std::min(n, out_.size() - out_pos_);
        std::memcpy(buf, out_.data() + out_pos_, k);
        out_pos_ += k;
        return k;
      }
      schedule();
      if (jobs_.empty()) {
        if (streaming_) continue;
        return 0;
      }
      out_ = jobs_.front().get();   // rethrows the job's error, in file order
      jobs_.pop_front();
      out_pos_ = 0;
    }
  }
  bool compressed() const override { return true; }
  std::uint64_t file_offset() const override { return streaming_ ? stream_offset() : split_offset_; }

 private:
  // Keeps one job per worker in flight, cutting new segments off the compressed data.
  void schedule() {
    while (jobs_.size() < workers_ && !streaming_) {
      std::size_t cut = find_cut();
      if (cut == 0) return;   // nothing left
      std::string segment = pending_.substr(0, cut);
      pending_.erase(0, cut);
      bool last = pending_.empty() && file_eof_;
      std::uint64_t offset = split_offset_;
      split_offset_ += cut;
      jobs_.push_back(std::async(std::launch::async, [segment = std::move(segment), offset, last, p = path_] {
        return decompress_segment(segment, offset, last, p);
      }));
    }
  }

  // Length of the next segment: up to the first stream start at or after segment_bytes_, or all
  // that is left at the end of the file. Switches to streaming when a stream is too long.
  std::size_t find_cut() {
    std::size_t searched = 1;
    while (true) {
      std::size_t from = std::max<std::size_t>(searched, segment_bytes_);
      for (std::size_t at = from < pending_.size() ? pending_.find("BZh", from) : std::string::npos;
           at != std::string::npos; at = pending_.find("BZh", at + 1)) {
        if (at + 10 > pending_.size()) break;
        if (is_stream_start(at)) return at;
      }
      if (pending_.size() >= from) searched = pending_.size() >= 9 ? pending_.size() - 9 : 1;
      if (file_eof_) return pending_.size();
      if (pending_.size() >= max_segment_bytes_) {
        start_streaming();
        return 0;
      }
      std::size_t old = pending_.size();
      pending_.resize(old + segment_bytes_);
      std::size_t got = read_some(file_.get(), pending_.data() + old, segment_bytes_, path_, read_offset_);
      pending_.resize(old + got);
      read_offset_ += got;
      if (got == 0) file_eof_ = true;
    }
  }

  // "BZh" + block-size digit + the magic of a first block (pi) or of an end of stream (sqrt pi).
  bool is_stream_start(std::size_t at) const {
    static const unsigned char block[6] = {0x31, 0x41, 0x59, 0x26, 0x53, 0x59};
    static const unsigned char eos[6] = {0x17, 0x72, 0x45, 0x38, 0x50, 0x90};
    char level = pending_[at + 3];
    if (level < '1' || level > '9') return false;
    return std::memcmp(pending_.data() + at + 4, block, 6) == 0 || std::memcmp(pending_.data() + at + 4, eos, 6) == 0;
  }

  // From here on one decoder reads the rest: `pending_` (which starts at a stream start), then
  // the file. Jobs already cut are handed out first.
  void start_streaming() {
    if (!jobs_.empty()) return;   // finish the queued segments first; called again when empty
    streaming_ = true;
    stream_base_ = split_offset_;
  }

  std::uint64_t stream_offset() const { return stream_base_ + fed_ - decoder_.pending_input(); }

  std::size_t read_streaming(char* buf, std::size_t n) {
    while (true) {
      if (decoder_.pending_input() == 0 && !(pending_.empty() && file_eof_)) feed_more();
      bool input_done = decoder_.pending_input() == 0 && pending_.empty() && file_eof_;
      if (!decoder_.in_stream() && input_done) return 0;   // clean end after a whole stream
      std::uint64_t feed_offset = stream_base_ + fed_ - feed_size_;
      std::size_t produced = decoder_.decode(buf, n, path_, feed_offset, feed_size_);
      if (produced > 0) return produced;
      if (decoder_.in_stream() && input_done) throw bz2_truncated(path_, stream_offset());
    }
  }

  void feed_more() {
    if (!pending_.empty()) {
      feed_buf_.assign(pending_.begin(), pending_.end());
      pending_.clear();
    } else {
      feed_buf_.resize(kFileChunk);
      std::size_t got = read_some(file_.get(), feed_buf_.data(), kFileChunk, path_, read_offset_);
      feed_buf_.resize(got);
      read_offset_ += got;
      if (got == 0) file_eof_ = true;
    }
    feed_size_ = feed_buf_.size();
    fed_ += feed_size_;
    decoder_.feed(feed_buf_.data(), feed_size_);
  }

  FilePtr file_;
  const std::size_t segment_bytes_, max_segment_bytes_, workers_;
  // Parallel mode.
  std::string pending_;                 // compressed bytes read but not yet cut into a segment
  std::uint64_t read_offset_ = 0;       // file bytes read so far
  std::uint64_t split_offset_ = 0;      // file offset of pending_[0]
  bool file_eof_ = false;
  std::deque<std::future<std::string>> jobs_;
  std::string out_;
  std::size_t out_pos_ = 0;
  // Streaming mode.
  bool streaming_ = false;
  Bz2Decoder decoder_;
  std::vector<char> feed_buf_;
  std::size_t feed_size_ = 0;
  std::uint64_t stream_base_ = 0, fed_ = 0;
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

std::unique_ptr<ByteSource> ByteSource::open(const std::filesystem::path& path, const Bz2Tuning& bz2) {
  open_file(path);   // existence / emptiness checks with clear errors
  if (looks_bzip2(path)) return std::make_unique<Bz2FileSource>(path, bz2);
  return std::make_unique<PlainFileSource>(path);
}

}  // namespace lvmflow::ingest
