#include "stages/ingest/text_input.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "pipeline/error.hpp"

namespace lvmflow::ingest {
namespace {
constexpr std::size_t kReadChunk = 1 << 20;
}

TextInput::TextInput(std::unique_ptr<ByteSource> source) : source_(std::move(source)) {}

std::string TextInput::where_at(std::uint64_t line, std::uint64_t offset) const {
  return source_->path().string() + ":" + std::to_string(line) + " (" +
         (source_->compressed() ? "decompressed byte " : "byte ") + std::to_string(offset) + ")";
}

void TextInput::advance(std::size_t n) {
  const char* p = buf_.data() + pos_;
  line_ += static_cast<std::uint64_t>(std::count(p, p + n, '\n'));
  pos_ += n;
}

std::size_t TextInput::fill(std::size_t n) {
  while (available() < n && !eof_) {
    // Drop consumed bytes so the buffer never grows past what one token needs plus a chunk.
    if (pos_ > 0 && pos_ >= buf_.size() / 2) {
      buf_.erase(0, pos_);
      buf_offset_ += pos_;
      pos_ = 0;
    }
    std::size_t old = buf_.size();
    buf_.resize(old + kReadChunk);
    std::size_t got = source_->read(buf_.data() + old, kReadChunk);
    buf_.resize(old + got);
    if (got == 0) {
      eof_ = true;
      if (utf8_pending_ > 0)
        throw Error(where_at(line_ + static_cast<std::uint64_t>(std::count(
                                         buf_.begin() + static_cast<long>(pos_), buf_.end(), '\n')),
                             utf8_lead_offset_),
                    "the text ends in the middle of a UTF-8 character",
                    "the file is truncated or not UTF-8; re-encode it as UTF-8");
    } else {
      check_utf8(old);
    }
  }
  return available();
}

// Validates the bytes buf_[from..] against the UTF-8 grammar (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF), carrying an open sequence over to the next chunk.
void TextInput::check_utf8(std::size_t from) {
  const auto* s = reinterpret_cast<const unsigned char*>(buf_.data());
  std::size_t n = buf_.size();
  std::size_t i = from;
  // Reports the byte that starts the bad sequence (the lead byte when a continuation is
  // missing), so the offset points at what a hex editor or `iconv` would flag.
  auto fail = [&](std::size_t at) {
    std::uint64_t bad_offset = buf_offset_ + at;
    unsigned char bad = s[at];
    if (utf8_pending_ > 0) {
      bad_offset = utf8_lead_offset_;
      bad = utf8_lead_;
    }
    std::uint64_t bad_line = line_;
    if (bad_offset >= buf_offset_ + pos_)
      bad_line += static_cast<std::uint64_t>(std::count(
          buf_.begin() + static_cast<long>(pos_),
          buf_.begin() + static_cast<long>(bad_offset - buf_offset_), '\n'));
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", bad);
    throw Error(where_at(bad_line, bad_offset),
                std::string("byte ") + hex + " is not valid UTF-8",
                "re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)");
  };
  while (i < n) {
    if (utf8_pending_ > 0) {
      if (s[i] < utf8_lo_ || s[i] > utf8_hi_) fail(i);
      utf8_lo_ = 0x80;
      utf8_hi_ = 0xBF;
      --utf8_pending_;
      ++i;
      continue;
    }
    // Fast path over ASCII, eight bytes at a time.
    while (i + 8 <= n) {
      std::uint64_t w;
      std::memcpy(&w, s + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    unsigned char c = s[i];
    if (c < 0x80) { ++i; continue; }
    utf8_lead_offset_ = buf_offset_ + i;
    utf8_lead_ = c;
    if (c >= 0xC2 && c <= 0xDF) { utf8_pending_ = 1; }
    else if (c == 0xE0) { utf8_pending_ = 2; utf8_lo_ = 0xA0; }
    else if (c == 0xED) { utf8_pending_ = 2; utf8_hi_ = 0x9F; }
    else if (c >= 0xE1 && c <= 0xEF) { utf8_pending_ = 2; }
    else if (c == 0xF0) { utf8_pending_ = 3; utf8_lo_ = 0x90; }
    else if (c == 0xF4) { utf8_pending_ = 3; utf8_hi_ = 0x8F; }
    else if (c >= 0xF1 && c <= 0xF3) { utf8_pending_ = 3; }
    else fail(i);
    ++i;
  }
}

}  // namespace lvmflow::ingest
