#include "stages/chunk/text_chunker.hpp"

#include "stages/chunk/sentence_splitter.hpp"

namespace lvmflow::chunk {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    std::size_t b = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    if (i > b) words.push_back(s.substr(b, i - b));
  }
  return words;
}

class ChunkBuilder {
 public:
  ChunkBuilder(const ChunkLimits& limits, const SizeMeasure& measure) : limits_(limits), measure_(measure) {}

  void add_sentence(std::string_view sentence) {
    std::size_t size = measure_.size(sentence);
    if (size > limits_.max) {
      close();
      cut_long_sentence(sentence);
      return;
    }
    if (current_size_ > 0) {
      bool over_max = current_size_ + size > limits_.max;
      bool overshoot = current_size_ >= limits_.min &&
                       current_size_ + size > limits_.target &&
                       current_size_ + size - limits_.target > limits_.target - std::min(current_size_, limits_.target);
      if (over_max || overshoot) close();
    }
    if (!current_.empty()) current_ += ' ';
    current_.append(sentence);
    current_size_ += size;
  }

  void end_paragraph() {
    // A paragraph that ends in ':' introduces the next one (usually a list): keep them together.
    bool introduces_next = !current_.empty() && current_.back() == ':';
    if (current_size_ >= limits_.min && !introduces_next) close();
  }

  std::vector<Chunk> finish() {
    if (current_size_ > 0 && current_size_ < limits_.min && !chunks_.empty() &&
        chunks_.back().size + current_size_ <= limits_.max) {
      chunks_.back().text += ' ';
      chunks_.back().text += current_;
      chunks_.back().size += current_size_;
      current_.clear();
      current_size_ = 0;
    }
    close();
    return std::move(chunks_);
  }

 private:
  void close() {
    if (current_size_ == 0 && current_.empty()) return;
    chunks_.push_back({std::move(current_), current_size_});
    current_.clear();
    current_size_ = 0;
  }

  // Equal pieces, each within `max`, cut between words.
  void cut_long_sentence(std::string_view sentence) {
    std::vector<std::string_view> words = split_words(sentence);
    std::vector<std::size_t> sizes;
    std::size_t total = 0;
    for (auto w : words) total += sizes.emplace_back(std::max<std::size_t>(1, measure_.size(w)));
    std::size_t pieces = (total + limits_.max - 1) / limits_.max;
    std::size_t per_piece = (total + pieces - 1) / pieces;
    Chunk piece;
    for (std::size_t k = 0; k < words.size(); ++k) {
      if (piece.size > 0 && (piece.size + sizes[k] > per_piece)) {
        chunks_.push_back(std::move(piece));
        piece = Chunk{};
      }
      if (!piece.text.empty()) piece.text += ' ';
      piece.text.append(words[k]);
      piece.size += sizes[k];
    }
    if (piece.size > 0) chunks_.push_back(std::move(piece));
  }

  const ChunkLimits& limits_;
  const SizeMeasure& measure_;
  std::vector<Chunk> chunks_;
  std::string current_;
  std::size_t current_size_ = 0;
};

}  // namespace

std::size_t WordMeasure::size(std::string_view text) const {
  std::size_t words = 0;
  bool in_word = false;
  for (char c : text) {
    bool space = is_space(c);
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

std::vector<Chunk> chunk_section(std::string_view section_text, const ChunkLimits& limits,
                                 const SizeMeasure& measure) {
  ChunkBuilder builder(limits, measure);
  std::size_t i = 0;
  while (i <= section_text.size()) {
    std::size_t blank = section_text.find("\n\n", i);
    std::size_t end = blank == std::string_view::npos ? section_text.size() : blank;
    // Lines inside a paragraph are list items: each is split into sentences on its own, so an
    // item never runs into the next one.
    std::string_view paragraph = section_text.substr(i, end - i);
    for (std::size_t line_begin = 0; line_begin <= paragraph.size();) {
      std::size_t nl = paragraph.find('\n', line_begin);
      std::size_t line_end = nl == std::string_view::npos ? paragraph.size() : nl;
      for (auto sentence : split_sentences(paragraph.substr(line_begin, line_end - line_begin)))
        builder.add_sentence(sentence);
      if (nl == std::string_view::npos) break;
      line_begin = nl + 1;
    }
    builder.end_paragraph();
    if (blank == std::string_view::npos) break;
    i = blank + 2;
  }
  return builder.finish();
}

}  // namespace lvmflow::chunk
