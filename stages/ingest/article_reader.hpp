#pragma once
// Readers that turn an input (an XML dump, JSON lines, a folder of .txt files) into a stream of
// raw articles. They report broken input in two ways: damage that makes the rest unreadable
// (truncated file, malformed XML, a non-UTF-8 byte) throws lvmflow::Error naming the file and
// line; a single broken article comes back with `problem` set so the stage can skip and count it.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace lvmflow::ingest {

struct RawArticle {
  std::int64_t id = 0;
  std::string title;
  std::int64_t ns = 0;          // MediaWiki namespace; 0 = main (articles)
  bool redirect = false;
  std::string text;             // wikitext (XML) or plain text (JSON lines, .txt)
  std::string where;            // file:line of the article, for messages
  std::string problem;          // non-empty: this article is broken and must be skipped
};

enum class InputFormat { Auto, Xml, JsonLines, TextFolder };
// Parses a `format` param value; throws lvmflow::Error on an unknown one.
InputFormat parse_input_format(const std::string& text);
// Decides the format of `path` for `Auto`: a folder is TextFolder; otherwise the file name
// (.jsonl, .json, .ndjson, .xml, with or without .bz2) and then its first bytes decide.
InputFormat detect_input_format(const std::filesystem::path& path);

class ArticleReader {
 public:
  virtual ~ArticleReader() = default;
  // Next article; false at the end of the input.
  virtual bool next(RawArticle& out) = 0;
};

std::unique_ptr<ArticleReader> open_article_reader(const std::filesystem::path& path,
                                                   InputFormat format);
// The files a reader of `path` would read, in reading order (for the stage's cache key).
std::vector<std::filesystem::path> input_files(const std::filesystem::path& path,
                                               InputFormat format);

// Wraps `inner` so that it reads ahead on its own thread, keeping at most `max_articles`
// articles and about `max_bytes` of text queued. Errors surface from next() in order.
std::unique_ptr<ArticleReader> make_prefetching_reader(std::unique_ptr<ArticleReader> inner,
                                                       std::size_t max_articles, std::size_t max_bytes);

std::unique_ptr<ArticleReader> make_wiki_xml_reader(const std::filesystem::path& path);
std::unique_ptr<ArticleReader> make_json_lines_reader(const std::filesystem::path& path);
std::unique_ptr<ArticleReader> make_text_folder_reader(const std::filesystem::path& folder);
// The .txt and .wiki files of a folder, sorted by name; throws lvmflow::Error if there are none.
std::vector<std::filesystem::path> text_folder_files(const std::filesystem::path& folder);

}  // namespace lvmflow::ingest
