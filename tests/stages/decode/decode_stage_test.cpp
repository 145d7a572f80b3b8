// decode.nearest and decode.vec2text through the stage contract (TestContext): nearest-chunk
// decode from a retrieve.index folder, vec2text decode with tiny checkpoints, metrics, param
// errors, and the checkpoint files in decode.vec2text's cache key.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "pipeline/error.hpp"
#include "pipeline/plan.hpp"
#include "pipeline/spec.hpp"
#include "pipeline/store.hpp"
#include "stages/common/npy.hpp"
#include "stages/retrieve/index_folder.hpp"
#include "tests/stages/decode/tiny_vec2text.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow {
namespace {

namespace fs = std::filesystem;
using testing::TestContext;
using testing::tiny_vec2text;

const std::vector<std::string> kChunkIds = {"7:0", "7:1", "7:2", "7:3"};

// A retrieve.index folder over the first four targets (the tiny GTR's vec2text embeddings of
// the reference texts), chunk ids 7:0..7:3.
fs::path make_index() {
  const NpyArray targets = read_npy(tiny_vec2text() / "targets.npy");
  const std::size_t dim = static_cast<std::size_t>(targets.shape[1]);
  std::vector<float> vectors(targets.data.begin(), targets.data.begin() + static_cast<std::ptrdiff_t>(4 * dim));
  std::vector<std::string> texts;
  for (const Json& t : testing::vec2text_reference().at("texts").as_array()) texts.push_back(t.as_string());
  fs::path dir = testing::make_temp_dir("lvmflow-decode-index");
  VectorIndex index = VectorIndex::build(vectors, 4, dim, IndexOptions{}, "test");
  index.save(dir, "test");
  save_index_folder(dir, index, kChunkIds, texts, vectors, "test");
  return dir;
}

// Queries: the four targets with ids naming the true chunk, except row 1 whose id names chunk
// 7:2 (so its nearest chunk is not its true text) and row 4 (a random vector, unknown id).
Batch queries() {
  const NpyArray targets = read_npy(tiny_vec2text() / "targets.npy");
  Batch b;
  b.dim = static_cast<std::size_t>(targets.shape[1]);
  b.vectors.assign(targets.data.begin(), targets.data.begin() + static_cast<std::ptrdiff_t>(5 * b.dim));
  b.ids = {"7:0", "7:2", "7:2", "7:3", "9:9"};
  b.ints["target_position"] = {0, 2, 2, 3, 9};
  b.reals["cosine"] = {0.5, 0.5, 0.5, 0.5, 0.5};   // lvm.predict's own column passes through
  return b;
}

Batch run_stage(TestContext& ctx, const Batch& in) {
  auto stage = ctx.make_stage();
  auto& map = dynamic_cast<MapStage&>(*stage);
  map.start(ctx);
  Batch out = map.process(ctx, in);
  map.consume_ordered(ctx, out);
  map.finish(ctx);
  return out;
}

TEST(DecodeStage, NearestChunkIsLabelledScoredAndComparedWithTheTrueChunk) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  const fs::path index = make_index();
  TestContext ctx("decode.nearest", {{"encoder_model", (tiny_vec2text() / "gtr").string()}, {"pooling", "vec2text"}});
  ctx.add_input("predictions", {});
  ctx.add_input("index", index);
  const Batch out = run_stage(ctx, queries());
  const auto& texts = testing::vec2text_reference().at("texts").as_array();
  ASSERT_EQ(out.rows(), 5u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(out.text.at("method")[i], "decode: nearest-chunk");
    EXPECT_EQ(out.text.at("text")[i], texts[i].as_string()) << i;   // each target's own chunk
    EXPECT_NEAR(out.reals.at("score")[i], 1.0, 1e-5) << i;
    EXPECT_NEAR(out.reals.at("text_cosine")[i], 1.0, 1e-4) << i;   // re-encoding gives the target back
  }
  EXPECT_DOUBLE_EQ(out.reals.at("bleu")[0], 1.0);
  EXPECT_DOUBLE_EQ(out.reals.at("token_f1")[0], 1.0);
  EXPECT_EQ(out.text.at("true_text")[1], texts[2].as_string());
  EXPECT_LT(out.reals.at("bleu")[1], 1.0);
  EXPECT_LT(out.reals.at("token_f1")[1], 1.0);
  EXPECT_TRUE(std::isnan(out.reals.at("bleu")[4]));   // id not in the index: no true text
  EXPECT_EQ(out.text.at("true_text")[4], "");
  EXPECT_EQ(out.ints.at("target_position"), (std::vector<std::int64_t>{0, 2, 2, 3, 9}));
  EXPECT_EQ(out.reals.at("cosine")[0], 0.5);
  EXPECT_EQ(ctx.text_metrics.at("decode_method"), "decode: nearest-chunk");
  EXPECT_EQ(ctx.metric_value("vectors_decoded"), 5);
  EXPECT_EQ(ctx.metric_value("rows_with_true_text"), 4);
  EXPECT_NEAR(ctx.metric_value("bleu_mean"),
              (3 + out.reals.at("bleu")[1]) / 4, 1e-12);
  fs::remove_all(index);
}

TEST(DecodeStage, Vec2TextDecodeMatchesReferenceAndReportsCosine) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  const fs::path index = make_index();
  TestContext ctx("decode.vec2text", {{"inversion_model", (tiny_vec2text() / "inversion").string()},
                                      {"corrector_model", (tiny_vec2text() / "corrector").string()},
                                      {"encoder_model", (tiny_vec2text() / "gtr").string()},
                                      {"num_steps", "2"},
                                      {"sequence_beam_width", "2"},
                                      {"num_beams", "2"},
                                      {"batch_size", "2"}});
  ctx.add_input("predictions", {});
  ctx.add_input("index", index);
  const Batch out = run_stage(ctx, queries());
  std::vector<std::string> expected;
  for (const Json& c : testing::vec2text_reference().at("invert").as_array())
    if (c.at("num_steps").as_int() == 2 && c.at("sequence_beam_width").as_int() == 2)
      for (const Json& t : c.at("texts").as_array()) expected.push_back(t.as_string());
  ASSERT_GE(expected.size(), 5u);
  expected.resize(5);
  EXPECT_EQ(out.text.at("text"), expected);
  EXPECT_EQ(out.text.at("method")[0], "vec2text: 2 corrections, sequence beam 2, 2 beams");
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_FALSE(std::isnan(out.reals.at("text_cosine")[i])) << i;
    EXPECT_EQ(out.reals.at("score")[i], out.reals.at("text_cosine")[i]);
  }
  EXPECT_FALSE(std::isnan(out.reals.at("bleu")[0]));
  EXPECT_GT(ctx.metric_value("seconds_per_vector"), 0);
  fs::remove_all(index);
}

TEST(DecodeStage, SampleFractionKeepsAStableSubsetById) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  const fs::path index = make_index();
  Batch many;
  many.dim = 32;
  for (int i = 0; i < 200; ++i) {
    many.ids.push_back("9:" + std::to_string(i));
    for (int j = 0; j < 32; ++j) many.vectors.push_back(static_cast<float>((i * 31 + j * 7) % 13) - 6.0f);
  }
  auto decode_ids = [&](const std::string& fraction, const Batch& in) {
    TestContext ctx("decode.nearest", {{"sample_fraction", fraction}});
    ctx.add_input("predictions", {});
    ctx.add_input("index", index);
    return run_stage(ctx, in).ids;
  };
  const auto quarter = decode_ids("0.25", many);
  EXPECT_GT(quarter.size(), 30u);
  EXPECT_LT(quarter.size(), 70u);
  // Decoding a slice decodes exactly the sampled ids of that slice: the choice is per id.
  const auto tail = decode_ids("0.25", many.slice(100, 200));
  std::vector<std::string> expected_tail;
  for (const auto& id : quarter)
    if (std::stoi(id.substr(2)) >= 100) expected_tail.push_back(id);
  EXPECT_EQ(tail, expected_tail);
  // A larger fraction keeps a superset.
  const auto half = decode_ids("0.5", many);
  for (const auto& id : quarter) EXPECT_NE(std::find(half.begin(), half.end(), id), half.end()) << id;
  EXPECT_EQ(decode_ids("1", many).size(), 200u);
  fs::remove_all(index);
}

TEST(DecodeStage, HypothesisOnlyNeedsNoIndexNorEncoder) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  TestContext ctx("decode.vec2text", {{"inversion_model", (tiny_vec2text() / "inversion").string()},
                                      {"tokenizer", (tiny_vec2text() / "gtr" / "spiece.model").string()}});
  ctx.add_input("predictions", {});
  const Batch out = run_stage(ctx, queries());
  const auto& ref = testing::vec2text_reference().at("invert").as_array()[0];   // (0, 0, 1)
  ASSERT_EQ(ref.at("num_steps").as_int(), 0);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(out.text.at("text")[i], ref.at("texts").as_array()[i].as_string());
  EXPECT_EQ(out.text.at("method")[0], "vec2text: hypothesis");
  EXPECT_TRUE(std::isnan(out.reals.at("text_cosine")[0]));
}

std::string start_error(const std::map<std::string, std::string>& params, bool with_index,
                        const std::string& type = "decode.vec2text") {
  try {
    TestContext ctx(type, params);
    stage_registry().find(type)->validate(ctx.params());
    ctx.add_input("predictions", {});
    if (with_index) ctx.add_input("index", tiny_vec2text());   // not an index folder
    auto stage = ctx.make_stage();
    dynamic_cast<MapStage&>(*stage).start(ctx);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(DecodeStage, ConfigurationErrorsSayWhatToDo) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  EXPECT_NE(start_error({}, false, "decode.nearest").find("no retrieve.index input"), std::string::npos);
  EXPECT_NE(start_error({}, true, "decode.nearest").find("is not a retrieve.index stage"), std::string::npos);
  // No silent fall-back to nearest-chunk: one line naming both checkpoints and the alternative.
  for (const auto& params : {std::map<std::string, std::string>{}, {{"inversion_model", ""}}}) {
    const std::string e = start_error(params, true);
    EXPECT_NE(e.find("jxm/gtr__nq__32 "), std::string::npos) << e;
    EXPECT_NE(e.find("jxm/gtr__nq__32__correct"), std::string::npos) << e;
    EXPECT_NE(e.find("decode.nearest"), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  const std::string inv = (tiny_vec2text() / "inversion").string();
  EXPECT_NE(start_error({{"inversion_model", inv}, {"num_steps", "3"}}, false).find("corrections need corrector_model"),
            std::string::npos);
  const std::string beams = start_error({{"inversion_model", inv}, {"num_beams", "0"}}, false);
  EXPECT_NE(beams.find("param num_beams must be >= 1, found 0"), std::string::npos) << beams;
  EXPECT_NE(start_error({{"inversion_model", "/nonexistent/v2t"}}, false).find("does not exist"), std::string::npos);
  EXPECT_NE(start_error({{"inversion_model", inv}}, false).find("no T5 tokenizer"), std::string::npos);
  const std::string dtype = start_error({{"inversion_model", inv}, {"dtype", "float16"}}, false);
  EXPECT_NE(dtype.find("float16"), std::string::npos) << dtype;
}

TEST(DecodeStage, WrongVectorWidthIsAnError) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  TestContext ctx("decode.vec2text", {{"inversion_model", (tiny_vec2text() / "inversion").string()},
                                      {"tokenizer", (tiny_vec2text() / "gtr" / "spiece.model").string()}});
  ctx.add_input("predictions", {});
  auto stage = ctx.make_stage();
  auto& map = dynamic_cast<MapStage&>(*stage);
  map.start(ctx);
  Batch in;
  in.ids = {"x"};
  in.dim = 3;
  in.vectors = {1, 2, 3};
  try {
    map.process(ctx, in);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vectors are 3-D, the decoder expects 32-D"), std::string::npos) << e.what();
  }
}

// Replacing a checkpoint file in place (same path, new bytes) must re-run decode.vec2text:
// the plan's key covers the inversion, corrector (sharded) and encoder files.
TEST(DecodeStage, Vec2TextCacheKeyChangesWhenCheckpointFilesAreReplaced) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  const fs::path dir = testing::make_temp_dir("lvmflow-v2t-key");
  const fs::path inv = testing::copy_folder(tiny_vec2text() / "inversion", "lvmflow-v2t-key-inv");
  const fs::path cor = testing::copy_folder(tiny_vec2text() / "corrector", "lvmflow-v2t-key-cor");
  const fs::path gtr = testing::copy_folder(tiny_vec2text() / "gtr", "lvmflow-v2t-key-gtr");
  std::ofstream(dir / "p.yaml") << "pipeline: key\nstore: store\nstages:\n"
                                << "  - {name: vectors, type: testing.sequence}\n"
                                << "  - name: decode\n    type: decode.vec2text\n    inputs: [vectors]\n"
                                << "    params: {inversion_model: " << inv << ", corrector_model: " << cor
                                << ", encoder_model: " << gtr << ", num_steps: 1}\n";
  auto key = [&] {
    const PipelineSpec spec = load_spec(dir / "p.yaml", stage_registry(), {});
    Store store(spec.store);
    return make_plan(spec, store, {}).stages.at(1).key;
  };
  auto rewrite = [](const fs::path& file) {   // same path, one more byte
    ASSERT_TRUE(fs::is_regular_file(file)) << file;
    std::ofstream(file, std::ios::binary | std::ios::app) << '\0';
  };
  std::string before = key();
  EXPECT_EQ(key(), before);
  for (const fs::path& file : {inv / "model.safetensors", cor / "pytorch_model-00002-of-00002.bin",
                               cor / "pytorch_model.bin.index.json", inv / "config.json", gtr / "model.safetensors",
                               gtr / "2_Dense" / "model.safetensors"}) {
    rewrite(file);
    const std::string after = key();
    EXPECT_NE(after, before) << file;
    before = after;
  }
  for (const auto& d : {dir, inv, cor, gtr}) fs::remove_all(d);
}

}  // namespace
}  // namespace lvmflow
