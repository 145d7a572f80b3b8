#include "stages/chunk/text_chunker.hpp"

#include <gtest/gtest.h>

#include <random>

#include "stages/chunk/sentence_splitter.hpp"

namespace lvmflow::chunk {

bool operator==(const Chunk& a, const Chunk& b) { return a.text == b.text && a.size == b.size; }

namespace {

const WordMeasure kWords;

std::string sentence(std::size_t words, const std::string& first = "Word") {
  std::string s = first;
  for (std::size_t i = 1; i < words; ++i) s += " w" + std::to_string(i);
  return s + ".";
}

std::vector<std::size_t> sizes(const std::vector<Chunk>& chunks) {
  std::vector<std::size_t> out;
  for (const auto& c : chunks) {
    EXPECT_EQ(kWords.size(c.text), c.size) << c.text;
    out.push_back(c.size);
  }
  return out;
}

TEST(TextChunker, GroupsSentencesTowardsTheTarget) {
  // Ten 10-word sentences in one paragraph, target 40: chunks of four sentences.
  std::string text;
  for (int i = 0; i < 10; ++i) text += sentence(10) + " ";
  auto chunks = chunk_section(text, {40, 12, 80}, kWords);
  EXPECT_EQ(sizes(chunks), (std::vector<std::size_t>{40, 40, 20}));
}

TEST(TextChunker, StopsBeforeOvershootingTheTargetMoreThanUndershooting) {
  // 30 + 25 would overshoot 40 by 15, more than 30 falls short by 10: close at 30.
  auto chunks = chunk_section(sentence(30) + " " + sentence(25) + " " + sentence(20), {40, 12, 80}, kWords);
  EXPECT_EQ(sizes(chunks), (std::vector<std::size_t>{30, 45}));
  // 20 + 25 overshoots by 5 only: keep together.
  chunks = chunk_section(sentence(20) + " " + sentence(25) + " " + sentence(30), {40, 12, 80}, kWords);
  EXPECT_EQ(sizes(chunks), (std::vector<std::size_t>{45, 30}));
}

TEST(TextChunker, ParagraphEndsCloseChunksThatReachedMin) {
  std::string text = sentence(15) + "\n\n" + sentence(15) + "\n\n" + sentence(5) + "\n\n" + sentence(10);
  // 15 | 15 | 5 runs on into the next paragraph: 15.
  EXPECT_EQ(sizes(chunk_section(text, {40, 12, 80}, kWords)), (std::vector<std::size_t>{15, 15, 15}));
}

TEST(TextChunker, ListItemsAreKeptWholeAndGrouped) {
  // Items without a final period do not run into each other; short items share a chunk.
  std::string list = "alpha one two three four five six;\nbeta one two three four five six;\n"
                     "gamma one two three four five six;\ndelta one two three four five six";
  auto chunks = chunk_section("Intro sentence with five words.\n\n" + list, {14, 5, 20}, kWords);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].text, "Intro sentence with five words.");
  EXPECT_EQ(chunks[1].text, "alpha one two three four five six; beta one two three four five six;");
  EXPECT_EQ(chunks[2].text, "gamma one two three four five six; delta one two three four five six");
}

TEST(TextChunker, AParagraphEndingInAColonRunsOnIntoItsList) {
  auto chunks = chunk_section("Notable examples of the kind include:\nfirst item here;\nsecond item here",
                              {14, 5, 20}, kWords);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].text, "Notable examples of the kind include: first item here; second item here");
  chunks = chunk_section("Notable examples of the kind include:\n\nfirst item here;\nsecond item here",
                         {14, 5, 20}, kWords);
  EXPECT_EQ(chunks.size(), 1u);
}

TEST(TextChunker, ALastShortChunkJoinsThePreviousOne) {
  auto chunks = chunk_section(sentence(40) + " " + sentence(45) + " " + sentence(5), {40, 12, 80}, kWords);
  EXPECT_EQ(sizes(chunks), (std::vector<std::size_t>{40, 50}));
  // ...unless that would pass max: then it stays alone.
  chunks = chunk_section(sentence(40) + " " + sentence(78) + " " + sentence(5), {40, 12, 80}, kWords);
  EXPECT_EQ(sizes(chunks), (std::vector<std::size_t>{40, 78, 5}));
}

TEST(TextChunker, OnlyASentenceLongerThanMaxIsCutIntoEqualPieces) {
  auto chunks = chunk_section(sentence(10, "Intro") + " " + sentence(170, "Long") + " " + sentence(10, "Outro"),
                              {40, 12, 80}, kWords);
  // The 10-word outro is under min and joins the last piece.
  EXPECT_EQ(sizes(chunks), (std::vector<std::size_t>{10, 57, 57, 66}));
  EXPECT_EQ(chunks[1].text.rfind("Long w1", 0), 0u);
}

TEST(TextChunker, PropertiesOnRandomText) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> words(1, 60), sentences(1, 8), paragraphs(1, 5);
  for (int round = 0; round < 300; ++round) {
    std::string text;
    std::vector<std::string> all_sentences;
    for (int p = paragraphs(rng); p > 0; --p) {
      if (!text.empty()) text += "\n\n";
      for (int s = sentences(rng); s > 0; --s) {
        std::string sent = sentence(static_cast<std::size_t>(words(rng)), "S" + std::to_string(all_sentences.size()));
        all_sentences.push_back(sent);
        text += sent + " ";
      }
    }
    ChunkLimits limits{40, 12, 50};
    auto chunks = chunk_section(text, limits, kWords);
    // Nothing lost, nothing reordered: the chunks read back as the text.
    std::string joined, expected;
    for (const auto& c : chunks) joined += c.text + " ";
    for (const auto& s : all_sentences) expected += s + " ";
    EXPECT_EQ(joined, expected);
    for (const auto& c : chunks) EXPECT_LE(c.size, limits.max);
    // No sentence of at most max words is cut: each starts a chunk or follows ". ".
    for (const auto& c : chunks) {
      bool starts_sentence = c.text[0] == 'S';
      bool long_piece = c.text[0] == 'w';
      EXPECT_TRUE(starts_sentence || long_piece) << c.text;
    }
    EXPECT_EQ(chunks, chunk_section(text, limits, kWords)) << "not deterministic";
  }
}

}  // namespace

}  // namespace lvmflow::chunk
