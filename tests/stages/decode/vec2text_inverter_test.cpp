// End to end: hypothesis + corrections with re-embedding by the tiny GTR-T5, for several
// (num_steps, sequence_beam_width, num_beams) settings, against the Python reference texts.
#include <gtest/gtest.h>

#include "pipeline/error.hpp"
#include "stages/common/npy.hpp"
#include "stages/decode/vec2text_inverter.hpp"
#include "stages/encode/text_encoder.hpp"
#include "tests/stages/decode/tiny_vec2text.hpp"

namespace lvmflow {
namespace {

namespace fs = std::filesystem;
using testing::tiny_vec2text;

std::unique_ptr<TextEncoder> tiny_embedder() {
  EncoderOptions o;
  o.model_dir = tiny_vec2text() / "gtr";
  o.pooling = Pooling::Vec2Text;
  o.max_length = 12;   // max_seq_length of the tiny checkpoints
  return make_text_encoder(o);
}

Vec2TextOptions tiny_options(std::int64_t steps, std::int64_t width, std::int64_t beams) {
  Vec2TextOptions o;
  o.inversion_model = tiny_vec2text() / "inversion";
  o.corrector_model = tiny_vec2text() / "corrector";
  o.search.num_steps = steps;
  o.search.sequence_beam_width = width;
  o.search.num_beams = beams;
  return o;
}

TEST(Vec2TextInverter, TextsMatchReferenceForEveryStepAndBeamSetting) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  const NpyArray targets = read_npy(tiny_vec2text() / "targets.npy");
  const auto embedder = tiny_embedder();
  // One loaded inverter serves every search setting.
  Vec2TextInverter inverter(tiny_options(1, 0, 1), embedder.get(), tiny_vec2text() / "gtr" / "spiece.model");
  for (const Json& c : testing::vec2text_reference().at("invert").as_array()) {
    Vec2TextSearch search;
    search.num_steps = c.at("num_steps").as_int();
    search.sequence_beam_width = c.at("sequence_beam_width").as_int();
    search.num_beams = c.at("num_beams").as_int();
    SCOPED_TRACE("num_steps " + std::to_string(search.num_steps) + ", sequence_beam_width " +
                 std::to_string(search.sequence_beam_width) + ", num_beams " + std::to_string(search.num_beams));
    const auto texts = inverter.invert(targets.data.data(), static_cast<std::size_t>(targets.shape[0]), search);
    std::vector<std::string> expected;
    for (const Json& t : c.at("texts").as_array()) expected.push_back(t.as_string());
    EXPECT_EQ(texts, expected);
  }
}

TEST(Vec2TextInverter, BatchingDoesNotChangeTheText) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  const NpyArray targets = read_npy(tiny_vec2text() / "targets.npy");
  const auto embedder = tiny_embedder();
  Vec2TextInverter inverter(tiny_options(2, 2, 2), embedder.get(), tiny_vec2text() / "gtr" / "spiece.model");
  const std::size_t n = static_cast<std::size_t>(targets.shape[0]), dim = inverter.embedder_dim();
  const auto together = inverter.invert(targets.data.data(), n);
  for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(inverter.invert(targets.data.data() + i * dim, 1)[0], together[i]) << i;
}

TEST(Vec2TextInverter, MisconfigurationsAreClearErrors) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  const auto embedder = tiny_embedder();
  const fs::path spiece = tiny_vec2text() / "gtr" / "spiece.model";
  auto error_of = [&](const Vec2TextOptions& o, const TextEncoder* e) -> std::string {
    try {
      Vec2TextInverter inv(o, e, spiece);
    } catch (const Error& err) {
      return err.what();
    }
    return "(no error)";
  };
  Vec2TextOptions no_corrector = tiny_options(1, 0, 1);
  no_corrector.corrector_model.clear();
  EXPECT_NE(error_of(no_corrector, embedder.get()).find("needs a corrector model"), std::string::npos);
  EXPECT_NE(error_of(tiny_options(1, 0, 1), nullptr).find("need a GTR-T5 encoder"), std::string::npos);

  EncoderOptions st;
  st.model_dir = tiny_vec2text() / "gtr";   // sentence-transformers pooling: the wrong space
  const auto wrong_pooling = make_text_encoder(st);
  EXPECT_NE(error_of(tiny_options(1, 0, 1), wrong_pooling.get()).find("vec2text pooling"), std::string::npos);

  Vec2TextOptions swapped = tiny_options(1, 0, 1);
  swapped.corrector_model = tiny_vec2text() / "inversion";
  EXPECT_NE(error_of(swapped, embedder.get()).find("layernorm.weight"), std::string::npos);
}

}  // namespace
}  // namespace lvmflow
