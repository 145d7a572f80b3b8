// A folder of .txt (or .wiki) files, one article each, read in file-name order. The title is
// the first line when it reads `TITLE: ...`, otherwise the file name; the id is the file's
// 1-based rank. data/articles/*.wiki, the sources of the sample dump, read this way too.
#include <algorithm>

#include "pipeline/error.hpp"
#include "stages/ingest/article_reader.hpp"
#include "stages/ingest/text_input.hpp"

namespace lvmflow::ingest {

std::vector<std::filesystem::path> text_folder_files(const std::filesystem::path& folder) {
  std::error_code ec;
  if (!std::filesystem::exists(folder, ec))
    throw Error(folder.string(), "input folder does not exist", "check the stage's `path` param");
  if (!std::filesystem::is_directory(folder, ec))
    throw Error(folder.string(), "is a file, expected a folder of .txt files",
                "set format: xml or jsonl for a single file");
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec))
    if (entry.is_regular_file() && (entry.path().extension() == ".txt" || entry.path().extension() == ".wiki"))
      files.push_back(entry.path());
  if (ec) throw Error(folder.string(), "cannot list the folder: " + ec.message());
  if (files.empty())
    throw Error(folder.string(), "the folder holds no .txt or .wiki files", "put one article per .txt file there");
  std::sort(files.begin(), files.end());
  return files;
}

namespace {

class TextFolderReader : public ArticleReader {
 public:
  explicit TextFolderReader(const std::filesystem::path& folder) : files_(text_folder_files(folder)) {}

  bool next(RawArticle& out) override {
    if (index_ >= files_.size()) return false;
    const auto& file = files_[index_++];
    out = RawArticle{};
    out.id = static_cast<std::int64_t>(index_);
    out.where = file.string();
    std::error_code ec;
    if (std::filesystem::file_size(file, ec) == 0) {
      out.problem = "empty file";
      return true;
    }
    TextInput input(ByteSource::open(file));
    std::string text;
    while (input.fill(1)) {
      text.append(input.cursor(), input.available());
      input.advance(input.available());
    }
    static constexpr std::string_view kTitle = "TITLE:";
    if (text.compare(0, kTitle.size(), kTitle) == 0) {
      std::size_t nl = text.find('\n');
      std::string first = text.substr(kTitle.size(), nl == std::string::npos ? std::string::npos : nl - kTitle.size());
      std::size_t b = first.find_first_not_of(" \t\r");
      std::size_t e = first.find_last_not_of(" \t\r");
      out.title = b == std::string::npos ? std::string() : first.substr(b, e - b + 1);
      text.erase(0, nl == std::string::npos ? text.size() : nl + 1);
    } else {
      out.title = file.stem().string();
      std::replace(out.title.begin(), out.title.end(), '_', ' ');
    }
    if (out.title.empty()) out.problem = "empty TITLE: line";
    out.text = std::move(text);
    return true;
  }

 private:
  std::vector<std::filesystem::path> files_;
  std::size_t index_ = 0;
};

}  // namespace

std::unique_ptr<ArticleReader> make_text_folder_reader(const std::filesystem::path& folder) {
  return std::make_unique<TextFolderReader>(folder);
}

}  // namespace lvmflow::ingest
