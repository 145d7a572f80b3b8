#pragma once
// Buffered text over a ByteSource that checks every byte is valid UTF-8 as it arrives and
// keeps the line number and byte offset of the read position, so parse errors can say where.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "stages/ingest/byte_source.hpp"

namespace lvmflow::ingest {

class TextInput {
 public:
  explicit TextInput(std::unique_ptr<ByteSource> source);

  // Makes at least `n` bytes available after the cursor unless the input ends first; returns
  // how many are available.
  std::size_t fill(std::size_t n);
  const char* cursor() const { return buf_.data() + pos_; }
  std::size_t available() const { return buf_.size() - pos_; }
  // Moves the cursor forward over `n` available bytes.
  void advance(std::size_t n);
  // Next byte, or -1 at the end.
  int peek() { return fill(1) ? static_cast<unsigned char>(buf_[pos_]) : -1; }
  int get() {
    int c = peek();
    if (c >= 0) advance(1);
    return c;
  }
  bool starts_with(std::string_view s) {
    return fill(s.size()) >= s.size() && std::string_view(cursor(), s.size()) == s;
  }
  bool at_end() { return fill(1) == 0; }

  std::uint64_t offset() const { return buf_offset_ + pos_; }   // of the cursor, in the text
  std::uint64_t line() const { return line_; }                   // 1-based, of the cursor
  // "FILE:LINE (byte N)" for the cursor, or for an earlier remembered line/offset.
  std::string where() const { return where_at(line_, offset()); }
  std::string where_at(std::uint64_t line, std::uint64_t offset) const;
  const std::filesystem::path& path() const { return source_->path(); }

 private:
  void check_utf8(std::size_t from);

  std::unique_ptr<ByteSource> source_;
  std::string buf_;
  std::size_t pos_ = 0;
  std::uint64_t buf_offset_ = 0;   // text offset of buf_[0]
  std::uint64_t line_ = 1;
  bool eof_ = false;
  // UTF-8 sequence left open at the end of the last chunk read.
  int utf8_pending_ = 0;
  unsigned char utf8_lo_ = 0x80, utf8_hi_ = 0xBF;
  std::uint64_t utf8_lead_offset_ = 0;
  unsigned char utf8_lead_ = 0;
};

}  // namespace lvmflow::ingest
