#pragma once
// Section text -> ordered chunks, paragraph- and sentence-aware. Sizes are measured by a
// SizeMeasure (words, or T5 tokens through sentencepiece). Rules, in order:
//  * a sentence is never cut, unless it alone is longer than `max`; then it is cut at word
//    boundaries into equal pieces of at most `max`;
//  * sentences are added to the current chunk while it stays within `max`; once the chunk
//    holds at least `min`, a sentence that would overshoot `target` by more than the chunk
//    falls short of it starts a new chunk;
//  * a paragraph end closes the chunk when it holds at least `min` (short paragraphs, and
//    paragraphs ending in ':' that introduce a list, run on into the next one);
//  * at the section end, a last chunk under `min` joins the previous one if that stays within
//    `max`.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lvmflow::chunk {

class SizeMeasure {
 public:
  virtual ~SizeMeasure() = default;
  virtual std::size_t size(std::string_view text) const = 0;
  virtual const char* unit() const = 0;
};

class WordMeasure : public SizeMeasure {
 public:
  std::size_t size(std::string_view text) const override;
  const char* unit() const override { return "words"; }
};

struct ChunkLimits {
  std::size_t target = 40;
  std::size_t min = 12;
  std::size_t max = 80;
};

struct Chunk {
  std::string text;
  std::size_t size = 0;   // in the measure's unit
};

// Paragraphs in `section_text` are separated by blank lines ("\n\n"); a single newline inside
// a paragraph separates list items, which are kept whole like sentences.
std::vector<Chunk> chunk_section(std::string_view section_text, const ChunkLimits& limits,
                                 const SizeMeasure& measure);

}  // namespace lvmflow::chunk
