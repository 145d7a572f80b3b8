// WikiExtractor-style JSON lines: one {"id", "title", "text", ...} object per line. A line
// that does not parse, or lacks a field, is one broken article: returned with `problem` set.
#include <cctype>
#include <charconv>
#include <cstring>

#include "pipeline/error.hpp"
#include "stages/ingest/article_reader.hpp"
#include "stages/common/utf8.hpp"
#include "stages/ingest/text_input.hpp"

namespace lvmflow::ingest {
namespace {

constexpr std::size_t kMaxLine = std::size_t(256) << 20;

// A strict little JSON reader for one line; only what an article object needs is kept.
class JsonLine {
 public:
  explicit JsonLine(std::string_view s) : s_(s) {}

  // Parses `{...}`; fills id/title/text when present. Returns an error text, empty when fine.
  std::string parse(RawArticle& out, bool& have_id, bool& have_title, bool& have_text) {
    try {
      space();
      expect('{');
      space();
      if (peek() != '}') {
        while (true) {
          space();
          std::string key = string();
          space();
          expect(':');
          space();
          if (key == "title" && peek() == '"') { out.title = string(); have_title = true; }
          else if (key == "text" && peek() == '"') { out.text = string(); have_text = true; }
          else if (key == "id") have_id = id(out.id);
          else skip_value(0);
          space();
          if (peek() == ',') { ++i_; continue; }
          break;
        }
      }
      expect('}');
      space();
      if (i_ != s_.size()) return "unexpected text after the JSON object";
      return {};
    } catch (const std::string& why) {
      return why + " at column " + std::to_string(i_ + 1);
    }
  }

 private:
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void space() { while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_; }
  void expect(char c) {
    if (peek() != c) throw std::string("expected '") + c + "'";
    ++i_;
  }
  std::uint32_t hex4() {
    if (i_ + 4 > s_.size()) throw std::string("short \\u escape");
    std::uint32_t v = 0;
    auto [p, ec] = std::from_chars(s_.data() + i_, s_.data() + i_ + 4, v, 16);
    if (ec != std::errc() || p != s_.data() + i_ + 4) throw std::string("bad \\u escape");
    i_ += 4;
    return v;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (i_ >= s_.size()) throw std::string("unterminated string");
      char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) throw std::string("control character in a string");
      if (c != '\\') { out += c; continue; }
      if (i_ >= s_.size()) throw std::string("unterminated escape");
      char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.substr(i_, 2) != "\\u") throw std::string("lone surrogate in \\u escape");
            i_ += 2;
            std::uint32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) throw std::string("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            throw std::string("lone surrogate in \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default: throw std::string("unknown escape \\") + e;
      }
    }
  }
  // WikiExtractor writes ids as strings ("12"); other tools as numbers.
  bool id(std::int64_t& out) {
    std::string text;
    if (peek() == '"') text = string();
    else {
      std::size_t b = i_;
      while (i_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-')) ++i_;
      text = std::string(s_.substr(b, i_ - b));
    }
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return !text.empty() && ec == std::errc() && p == text.data() + text.size() && out >= 0;
  }
  void skip_value(int depth) {
    if (depth > 64) throw std::string("JSON nested too deeply");
    space();
    char c = peek();
    if (c == '"') { string(); return; }
    if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      ++i_;
      space();
      if (peek() == close) { ++i_; return; }
      while (true) {
        space();
        if (c == '{') { string(); space(); expect(':'); }
        skip_value(depth + 1);
        space();
        if (peek() == ',') { ++i_; continue; }
        expect(close);
        return;
      }
    }
    std::size_t b = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' ||
                              s_[i_] == '+' || s_[i_] == '.'))
      ++i_;
    std::string_view word = s_.substr(b, i_ - b);
    if (word.empty()) throw std::string("expected a JSON value");
    if (!(word == "true" || word == "false" || word == "null" ||
          std::isdigit(static_cast<unsigned char>(word[0])) || word[0] == '-'))
      throw std::string("unexpected '") + std::string(word) + "'";
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

class JsonLinesReader : public ArticleReader {
 public:
  explicit JsonLinesReader(const std::filesystem::path& path) : input_(ByteSource::open(path)) {}

  bool next(RawArticle& out) override {
    while (true) {
      if (input_.at_end()) return false;
      std::uint64_t line_no = input_.line();
      std::uint64_t offset = input_.offset();
      read_line();
      if (line_.find_first_not_of(" \t\r") == std::string::npos) continue;   // blank line
      out = RawArticle{};
      out.where = input_.where_at(line_no, offset);
      bool have_id = false, have_title = false, have_text = false;
      std::string error = JsonLine(line_).parse(out, have_id, have_title, have_text);
      if (!error.empty()) out.problem = "line is not a JSON object: " + error;
      else if (!have_id) out.problem = "no numeric \"id\" field";
      else if (!have_title || out.title.empty()) out.problem = "no \"title\" field";
      else if (!have_text) out.problem = "no \"text\" field";
      return true;
    }
  }

 private:
  void read_line() {
    line_.clear();
    while (true) {
      std::size_t avail = input_.fill(1);
      if (avail == 0) return;
      const char* p = input_.cursor();
      const void* nl = std::memchr(p, '\n', avail);
      std::size_t run = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - p) : avail;
      line_.append(p, run);
      input_.advance(nl ? run + 1 : run);
      if (line_.size() > kMaxLine)
        throw Error(input_.where(), "a line longer than 256 MiB", "is this really a JSON lines file?");
      if (nl) return;
    }
  }

  TextInput input_;
  std::string line_;
};

}  // namespace

std::unique_ptr<ArticleReader> make_json_lines_reader(const std::filesystem::path& path) {
  return std::make_unique<JsonLinesReader>(path);
}

}  // namespace lvmflow::ingest
