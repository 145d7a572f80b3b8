// WikiExtractor-style JSON lines: one {"id", "title", "text", ...} object per line. A line
// that does not parse, or lacks a field, is one broken article: returned with `problem` set.
#include <charconv>
#include <cstring>

#include "pipeline/error.hpp"
#include "stages/ingest/article_reader.hpp"
#include "stages/common/json.hpp"
#include "stages/ingest/text_input.hpp"

namespace lvmflow::ingest {
namespace {

constexpr std::size_t kMaxLine = std::size_t(256) << 20;

// Reads one article object; returns the problem, empty when the line is a usable article.
std::string parse_article_line(std::string_view line, RawArticle& out) {
  Json doc;
  try {
    doc = Json::parse(line, "line");
  } catch (const Error& e) {
    return "line is not a JSON object: " + e.problem();
  }
  if (!doc.is_object()) return "line is not a JSON object";
  // WikiExtractor writes ids as strings ("12"); other tools as numbers.
  const Json* id = doc.find("id");
  bool have_id = false;
  if (id && id->is_integer()) {
    out.id = id->as_int();
    have_id = out.id >= 0;
  } else if (id && id->is_string()) {
    const std::string& text = id->as_string();
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out.id);
    have_id = !text.empty() && ec == std::errc() && p == text.data() + text.size() && out.id >= 0;
  }
  if (!have_id) return "no numeric \"id\" field";
  const Json* title = doc.find("title");
  if (!title || !title->is_string() || title->as_string().empty()) return "no \"title\" field";
  const Json* text = doc.find("text");
  if (!text || !text->is_string()) return "no \"text\" field";
  out.title = title->as_string();
  out.text = text->as_string();
  return {};
}

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
      out.problem = parse_article_line(line_, out);
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
