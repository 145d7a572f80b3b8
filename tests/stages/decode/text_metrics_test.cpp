#include <gtest/gtest.h>

#include <cmath>

#include "stages/decode/text_metrics.hpp"

namespace lvmflow {
namespace {

TEST(TextMetrics, WordTokensLowerCaseAndSplitPunctuation) {
  EXPECT_EQ(word_tokens("The dog's bone, 42!"),
            (std::vector<std::string>{"the", "dog", "'", "s", "bone", ",", "42", "!"}));
  EXPECT_TRUE(word_tokens("  \n").empty());
}

TEST(TextMetrics, BleuOfIdenticalTextIsOneAndOfDisjointTextZero) {
  EXPECT_DOUBLE_EQ(bleu4("the cat sat on the mat", "The cat sat on the mat"), 1.0);
  EXPECT_DOUBLE_EQ(bleu4("completely different words", "the cat sat on the mat"), 0.0);
  EXPECT_DOUBLE_EQ(bleu4("", "the cat"), 0.0);
}

TEST(TextMetrics, BleuHandComputedWithSmoothingAndBrevityPenalty) {
  // hyp "the cat sat" vs ref "the cat sat on the mat": precisions 3/3, (2+1)/(2+1), (1+1)/(1+1),
  // (0+1)/(0+1) -> 1; brevity penalty exp(1 - 6/3).
  EXPECT_NEAR(bleu4("the cat sat", "the cat sat on the mat"), std::exp(1.0 - 2.0), 1e-12);
  // hyp "the cat ran on the mat" (6) vs ref (6): p1 = 5/6, p2 = (3+1)/(5+1), p3 = (1+1)/(4+1),
  // p4 = (0+1)/(3+1) [matched 4-grams: none].
  const double expected = std::exp((std::log(5.0 / 6) + std::log(4.0 / 6) + std::log(2.0 / 5) + std::log(1.0 / 4)) / 4);
  EXPECT_NEAR(bleu4("the cat ran on the mat", "the cat sat on the mat"), expected, 1e-12);
}

TEST(TextMetrics, BleuClipsRepeatedWords) {
  // "the the the" vs "the cat": clipped unigram matches 1 of 3.
  const double p1 = 1.0 / 3, p2 = 1.0 / 3, p3 = 1.0 / 2, p4 = 1.0 / 1;
  EXPECT_NEAR(bleu4("the the the", "the cat"), std::exp((std::log(p1) + std::log(p2) + std::log(p3) + std::log(p4)) / 4),
              1e-12);
}

TEST(TextMetrics, TokenF1OverWordSets) {
  EXPECT_DOUBLE_EQ(token_f1("the cat sat", "the cat sat"), 1.0);
  // sets {the, cat, ran} vs {the, dog, sat, down}: common 1; P = 1/3, R = 1/4.
  EXPECT_NEAR(token_f1("the cat ran", "the dog sat down"), 2 * (1.0 / 3) * (1.0 / 4) / (1.0 / 3 + 1.0 / 4), 1e-12);
  EXPECT_DOUBLE_EQ(token_f1("a b", "c d"), 0.0);
  EXPECT_DOUBLE_EQ(token_f1("", ""), 1.0);
  EXPECT_DOUBLE_EQ(token_f1("", "x"), 0.0);
}

}  // namespace
}  // namespace lvmflow
