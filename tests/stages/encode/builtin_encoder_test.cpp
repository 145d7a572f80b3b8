#include <gtest/gtest.h>

#include <cmath>

#include "stages/encode/builtin_encoder.hpp"
#include "tests/stages/encode/tiny_models.hpp"

namespace lvmflow {
namespace {

using lvmflow::testing::cosine;

TEST(BuiltinHashEncoder, DeterministicUnitVectorsNamedHonestly) {
  BuiltinHashEncoder enc;
  EXPECT_EQ(enc.dim(), 768u);
  EXPECT_NE(enc.name().find("NOT GTR-T5"), std::string::npos);
  EXPECT_TRUE(enc.is_builtin());
  std::vector<std::string> texts = {"The cat sat on the mat.", "", "the CAT sat on the mat", "Völlig anders, 42!"};
  std::vector<float> a(texts.size() * 768), b(texts.size() * 768);
  enc.encode(texts, a.data());
  BuiltinHashEncoder().encode(texts, b.data());
  EXPECT_EQ(a, b);  // same input, same bits, in any process
  for (std::size_t i = 0; i < texts.size(); ++i) {
    double n = 0;
    for (std::size_t j = 0; j < 768; ++j) n += double(a[i * 768 + j]) * a[i * 768 + j];
    EXPECT_NEAR(n, 1.0, 1e-5) << i;
  }
  // Case and punctuation do not matter; different words do.
  EXPECT_GT(cosine(a.data(), a.data() + 2 * 768, 768), 0.99999);
  EXPECT_LT(cosine(a.data(), a.data() + 3 * 768, 768), 0.3);
}

TEST(BuiltinHashEncoder, SimilarTextsAreCloserThanUnrelatedOnes) {
  BuiltinHashEncoder enc;
  std::vector<std::string> texts = {"the river flows into the sea near the old harbour",
                                    "the river flows into the sea near the new harbour",
                                    "quantum chromodynamics describes the strong interaction"};
  std::vector<float> v(3 * 768);
  enc.encode(texts, v.data());
  EXPECT_GT(cosine(v.data(), v.data() + 768, 768), 0.7);
  EXPECT_LT(cosine(v.data(), v.data() + 2 * 768, 768), 0.35);  // they share only "the"
  // Word order enters through the word pairs.
  std::vector<std::string> swapped = {"dog bites man", "man bites dog"};
  std::vector<float> s(2 * 768);
  enc.encode(swapped, s.data());
  EXPECT_LT(cosine(s.data(), s.data() + 768, 768), 0.9);
}

TEST(BuiltinHashEncoder, MaxLengthTruncatesWords) {
  BuiltinHashEncoder enc(3);
  EXPECT_EQ(enc.words("one two three four five").size(), 3u);
  std::vector<float> a(768), b(768);
  enc.encode({"one two three four"}, a.data());
  enc.encode({"one two three five six"}, b.data());
  EXPECT_EQ(a, b);
  EXPECT_NE(enc.fingerprint(), BuiltinHashEncoder().fingerprint());
}

}  // namespace
}  // namespace lvmflow
