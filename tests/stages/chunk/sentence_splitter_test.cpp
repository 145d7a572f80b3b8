#include "stages/chunk/sentence_splitter.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lvmflow::chunk {
namespace {

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  for (auto s : split_sentences(text)) out.emplace_back(s);
  return out;
}

using Sentences = std::vector<std::string>;

TEST(SentenceSplitter, SplitsAtTerminatorsBeforeACapital) {
  EXPECT_EQ(split("The fox ran. It was fast! Was it? Yes."),
            (Sentences{"The fox ran.", "It was fast!", "Was it?", "Yes."}));
  EXPECT_EQ(split("  One.   Two.  "), (Sentences{"One.", "Two."}));
  EXPECT_EQ(split(""), Sentences{});
}

TEST(SentenceSplitter, AbbreviationsDoNotEndSentences) {
  EXPECT_EQ(split("Dr. Smith met Mr. Jones at St. Paul's. They talked."),
            (Sentences{"Dr. Smith met Mr. Jones at St. Paul's.", "They talked."}));
  EXPECT_EQ(split("Fruit, e.g. Apples and pears, i.e. Pome fruit. Next."),
            (Sentences{"Fruit, e.g. Apples and pears, i.e. Pome fruit.", "Next."}));
  EXPECT_EQ(split("He moved to the U.S. Army base in 1990. Then he left."),
            (Sentences{"He moved to the U.S. Army base in 1990.", "Then he left."}));
  EXPECT_EQ(split("See Fig. 3 and No. 5 in Vol. 2. Done."),
            (Sentences{"See Fig. 3 and No. 5 in Vol. 2.", "Done."}));
}

TEST(SentenceSplitter, DecimalsAndInitials) {
  EXPECT_EQ(split("Pi is about 3.14159. It is irrational."),
            (Sentences{"Pi is about 3.14159.", "It is irrational."}));
  EXPECT_EQ(split("J. R. R. Tolkien wrote it. John F. Kennedy read it."),
            (Sentences{"J. R. R. Tolkien wrote it.", "John F. Kennedy read it."}));
  EXPECT_EQ(split("It cost $4.50 in 1990. Prices rose."), (Sentences{"It cost $4.50 in 1990.", "Prices rose."}));
}

TEST(SentenceSplitter, QuotesBracketsAndNonAscii) {
  EXPECT_EQ(split("He said \"Stop.\" Then he left. (It was late.) Everyone slept."),
            (Sentences{"He said \"Stop.\"", "Then he left.", "(It was late.)", "Everyone slept."}));
  EXPECT_EQ(split("Il partit. \xC3\x89tienne resta. \xE2\x80\x9COui,\xE2\x80\x9D dit-il."),
            (Sentences{"Il partit.", "\xC3\x89tienne resta.", "\xE2\x80\x9COui,\xE2\x80\x9D dit-il."}));
  // A lower-case word after the period: not a new sentence.
  EXPECT_EQ(split("It was approx. ten metres. ok then."), (Sentences{"It was approx. ten metres. ok then."}));
}

}  // namespace
}  // namespace lvmflow::chunk
