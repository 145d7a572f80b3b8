#include "stages/ingest/article_reader.hpp"

#include <cctype>
#include <fstream>

#include "pipeline/error.hpp"
#include "stages/ingest/text_input.hpp"

namespace lvmflow::ingest {

InputFormat parse_input_format(const std::string& text) {
  if (text == "auto") return InputFormat::Auto;
  if (text == "xml") return InputFormat::Xml;
  if (text == "jsonl") return InputFormat::JsonLines;
  if (text == "txt") return InputFormat::TextFolder;
  throw Error("param format", "unknown format '" + text + "'", "use auto, xml, jsonl or txt");
}

InputFormat detect_input_format(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return InputFormat::TextFolder;
  std::string name = path.filename().string();
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name.size() > 4 && name.ends_with(".bz2")) name.resize(name.size() - 4);
  if (name.ends_with(".jsonl") || name.ends_with(".json") || name.ends_with(".ndjson"))
    return InputFormat::JsonLines;
  if (name.ends_with(".xml")) return InputFormat::Xml;
  // No telling name (e.g. WikiExtractor's wiki_00): look at the first non-blank character.
  if (!std::filesystem::exists(path, ec)) return InputFormat::Xml;   // the reader reports it
  TextInput input(ByteSource::open(path));
  while (true) {
    int c = input.get();
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0xEF || c == 0xBB || c == 0xBF)
      continue;   // whitespace, UTF-8 byte-order mark
    return c == '{' ? InputFormat::JsonLines : InputFormat::Xml;
  }
}

std::unique_ptr<ArticleReader> open_article_reader(const std::filesystem::path& path,
                                                   InputFormat format) {
  if (format == InputFormat::Auto) format = detect_input_format(path);
  switch (format) {
    case InputFormat::Xml: return make_wiki_xml_reader(path);
    case InputFormat::JsonLines: return make_json_lines_reader(path);
    case InputFormat::TextFolder: return make_text_folder_reader(path);
    case InputFormat::Auto: break;
  }
  throw Error(path.string(), "cannot tell the input format", "set format: xml, jsonl or txt");
}

std::vector<std::filesystem::path> input_files(const std::filesystem::path& path,
                                               InputFormat format) {
  if (format == InputFormat::Auto) format = detect_input_format(path);
  if (format == InputFormat::TextFolder) return text_folder_files(path);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw Error(path.string(), "input file does not exist", "check the stage's `path` param");
  return {path};
}

}  // namespace lvmflow::ingest
