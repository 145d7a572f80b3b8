// encode.gtr_t5 and encode.hashed through the registered stages and an in-memory context:
// pass-through columns, vectors.npy / chunk_ids.txt / encoder.json artifacts, the item cache,
// errors (encode.gtr_t5 without a model says where to get one).
#include <gtest/gtest.h>

#include <fstream>

#include "pipeline/error.hpp"
#include "stages/common/json.hpp"
#include "stages/common/npy.hpp"
#include "stages/encode/text_encoder.hpp"
#include "tests/stages/encode/tiny_models.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow {
namespace {

namespace fs = std::filesystem;
using lvmflow::testing::TestContext;
using lvmflow::testing::tiny_models;

Batch chunk_batch(const std::vector<std::string>& texts, std::size_t first_position = 0) {
  Batch b;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    b.ids.push_back("7:" + std::to_string(first_position + i));
    b.text["text"].push_back(texts[i]);
    b.text["title"].push_back("Article seven");
    b.ints["article_id"].push_back(7);
    b.ints["position"].push_back(static_cast<std::int64_t>(first_position + i));
  }
  return b;
}

// Runs the whole map-stage protocol over `batches` in order and returns the outputs.
std::vector<Batch> run_map(TestContext& ctx, const std::vector<Batch>& batches) {
  auto stage = ctx.make_stage();
  auto& map = dynamic_cast<MapStage&>(*stage);
  map.start(ctx);
  std::vector<Batch> out;
  for (const auto& b : batches) {
    out.push_back(map.process(ctx, b));
    map.consume_ordered(ctx, out.back());
  }
  map.finish(ctx);
  return out;
}

std::vector<std::string> corpus(std::size_t n) {
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < n; ++i)
    texts.push_back("Chunk " + std::to_string(i) + " says the fox jumps over dog number " + std::to_string(i * 7 % 13) + ".");
  return texts;
}

TEST(EncodeStage, HashedEncoderPassesRowsThroughAndWritesArtifacts) {
  TestContext ctx("encode.hashed");
  auto texts = corpus(10);
  auto out = run_map(ctx, {chunk_batch({texts.begin(), texts.begin() + 6}), chunk_batch({texts.begin() + 6, texts.end()}, 6)});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].dim, 768u);
  EXPECT_EQ(out[0].rows(), 6u);
  EXPECT_EQ(out[1].ids[0], "7:6");
  EXPECT_EQ(out[1].text_column("title")[0], "Article seven");
  EXPECT_EQ(out[1].int_column("position")[3], 9);
  out[1].check_consistent("test");

  // Honest naming: logs, metrics and encoder.json all say it is not GTR-T5.
  bool logged = false;
  for (const auto& l : ctx.logs) logged = logged || l.find("NOT GTR-T5") != std::string::npos;
  EXPECT_TRUE(logged);
  EXPECT_NE(ctx.text_metrics.at("encoder").find("NOT GTR-T5"), std::string::npos);
  Json rec = read_json_file((ctx.artifact_dir() / "encoder.json").string());
  EXPECT_NE(rec.at("model_name").as_string().find("NOT GTR-T5"), std::string::npos);
  EXPECT_FALSE(rec.at("is_gtr_t5").as_bool());
  EXPECT_EQ(rec.at("dim").as_int(), 768);
  EXPECT_EQ(rec.at("rows").as_int(), 10);

  NpyArray vectors = read_npy(ctx.artifact_dir() / "vectors.npy");
  ASSERT_EQ(vectors.shape, (std::vector<std::int64_t>{10, 768}));
  for (std::size_t j = 0; j < 768; ++j) EXPECT_EQ(vectors.data[7 * 768 + j], out[1].vector(1)[j]);
  auto ids = lvmflow::testing::read_lines(ctx.artifact_dir() / "chunk_ids.txt");
  ASSERT_EQ(ids.size(), 10u);
  EXPECT_EQ(ids[0], "7:0");
  EXPECT_EQ(ids[9], "7:9");
  EXPECT_EQ(ctx.metric_value("cache_misses", ctx.text_metrics.at("encoder")), 10);
}

// The item cache holds (artifact key, row) references, not vectors: a hit reads the row back
// from the committed vectors.npy; a reference whose file is gone is a miss, never a guess.
TEST(EncodeStage, ItemCacheRefersToCommittedRows) {
  TestContext first("encode.hashed");
  auto texts = corpus(20);
  auto a = run_map(first, {chunk_batch(texts)});
  ASSERT_EQ(first.cache_.size(), 20u);

  TestContext again("encode.hashed");
  again.shared_cache = &first.cache_;
  auto b = run_map(again, {chunk_batch(texts)});
  const std::string label = again.text_metrics.at("encoder");
  EXPECT_EQ(again.metric_value("cache_hits", label), 20);
  EXPECT_EQ(b[0].vectors, a[0].vectors);

  fs::remove(first.artifact_dir() / "vectors.npy");
  TestContext gone("encode.hashed");
  gone.shared_cache = &first.cache_;
  auto c = run_map(gone, {chunk_batch(texts)});
  EXPECT_EQ(gone.metric_value("cache_hits", label), 0);
  EXPECT_EQ(gone.metric_value("cache_misses", label), 20);
  EXPECT_EQ(c[0].vectors, a[0].vectors);
}

TEST(EncodeStage, ItemCacheReencodesOnlyChangedChunks) {
  LVMFLOW_REQUIRE_TINY_MODELS();
  TestContext ctx("encode.gtr_t5", {{"model", (tiny_models() / "relu_st").string()}});
  auto texts = corpus(100);
  auto first = run_map(ctx, {chunk_batch({texts.begin(), texts.begin() + 50}), chunk_batch({texts.begin() + 50, texts.end()}, 50)});
  const std::string label = ctx.text_metrics.at("encoder");
  EXPECT_EQ(ctx.metric_value("cache_hits", label), 0);
  EXPECT_EQ(ctx.metric_value("cache_misses", label), 100);
  EXPECT_EQ(ctx.cache_.size(), 100u);
  // Texts of different lengths share forward passes: some of what the model saw is padding.
  const double padding = ctx.metric_value("padded_token_share", label);
  EXPECT_GE(padding, 0.0);
  EXPECT_LT(padding, 0.5);

  // A rebuild (another run, same store) where 5% of the chunks changed encodes exactly those 5;
  // the cache refers to the first run's vectors.npy rows rather than holding copies.
  auto changed = texts;
  for (std::size_t i : {3u, 21u, 50u, 77u, 99u}) changed[i] += " (edited)";
  TestContext rebuild("encode.gtr_t5", {{"model", (tiny_models() / "relu_st").string()}});
  rebuild.shared_cache = &ctx.cache_;
  auto second = run_map(rebuild, {chunk_batch({changed.begin(), changed.begin() + 50}), chunk_batch({changed.begin() + 50, changed.end()}, 50)});
  EXPECT_EQ(rebuild.metric_value("cache_hits", label), 95);
  EXPECT_EQ(rebuild.metric_value("cache_misses", label), 5);
  EXPECT_EQ(ctx.cache_.size(), 105u);

  // Cached rows are the very vectors encoded before; edited rows match a fresh encoding.
  EncoderOptions o;
  o.model_dir = tiny_models() / "relu_st";
  auto enc = make_text_encoder(o);
  const std::size_t dim = enc->dim();
  for (std::size_t i = 0; i < 100; ++i) {
    const Batch& a = first[i / 50];
    const Batch& b = second[i / 50];
    const float* va = a.vector(i % 50);
    const float* vb = b.vector(i % 50);
    if (changed[i] == texts[i]) {
      EXPECT_TRUE(std::equal(va, va + dim, vb)) << i;
    } else {
      std::vector<float> fresh(dim);
      enc->encode({changed[i]}, fresh.data());
      EXPECT_GT(lvmflow::testing::cosine(fresh.data(), vb, dim), 0.999999) << i;
      EXPECT_LT(lvmflow::testing::cosine(va, vb, dim), 0.9999) << i;
    }
  }

  // Another pooling is another cache entry, not a stale hit.
  TestContext v2t("encode.gtr_t5", {{"model", (tiny_models() / "relu_st").string()}, {"pooling", "vec2text"}});
  run_map(v2t, {chunk_batch(texts)});
  EXPECT_EQ(v2t.metric_value("cache_misses", v2t.text_metrics.at("encoder")), 100);
  Json rec = read_json_file((v2t.artifact_dir() / "encoder.json").string());
  EXPECT_EQ(rec.at("pooling").as_string(), "vec2text");
  EXPECT_EQ(rec.at("dim").as_int(), 32);
  EXPECT_EQ(rec.at("max_length").as_int(), 64);
  EXPECT_TRUE(rec.at("is_gtr_t5").as_bool());
  EXPECT_EQ(rec.at("model_fingerprint").as_string().size(), 64u);
}

std::string error_of(const std::string& type, const std::map<std::string, std::string>& params) {
  try {
    TestContext ctx(type, params);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(EncodeStage, BadParamsAndFoldersAreClearErrors) {
  const std::string model = "/nonexistent/gtr-t5-base";
  EXPECT_NE(error_of("encode.gtr_t5", {{"model", model}, {"pooling", "cls"}}).find("unknown pooling 'cls'"), std::string::npos);
  EXPECT_NE(error_of("encode.gtr_t5", {{"model", model}, {"dtype", "int4"}}).find("unknown dtype 'int4'"), std::string::npos);
  EXPECT_NE(error_of("encode.gtr_t5", {{"model", model}, {"max_length", "-3"}}).find("max_length"), std::string::npos);
  EXPECT_NE(error_of("encode.hashed", {{"max_length", "-3"}}).find("max_length"), std::string::npos);
  const std::string missing = error_of("encode.gtr_t5", {{"model", model}});
  EXPECT_NE(missing.find(model), std::string::npos) << missing;
  EXPECT_NE(missing.find("download sentence-transformers/gtr-t5-base"), std::string::npos) << missing;
  TestContext ctx("encode.hashed");
  Batch no_text;
  no_text.ids = {"a"};
  no_text.text["body"] = {"x"};
  auto stage = ctx.make_stage();
  auto& map = dynamic_cast<MapStage&>(*stage);
  map.start(ctx);
  try {
    map.process(ctx, no_text);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("text"), std::string::npos) << e.what();
  }
}

TEST(EncodeStage, GtrT5WithoutModelSaysWhereToGetOne) {
  // No silent fall-back to the hashed encoder: one line naming the model and the alternative.
  for (const auto& params : {std::map<std::string, std::string>{}, {{"model", ""}}}) {
    const std::string e = error_of("encode.gtr_t5", params);
    EXPECT_NE(e.find("sentence-transformers/gtr-t5-base"), std::string::npos) << e;
    EXPECT_NE(e.find("encode.hashed"), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
}

TEST(EncodeStage, MissingWeightsFailAtStartNamingTheFile) {
  LVMFLOW_REQUIRE_TINY_MODELS();
  fs::path copy = lvmflow::testing::copy_model(tiny_models() / "relu_st", "lvmflow-noweights");
  fs::remove(copy / "model.safetensors");
  TestContext ctx("encode.gtr_t5", {{"model", copy.string()}});
  auto stage = ctx.make_stage();
  try {
    dynamic_cast<MapStage&>(*stage).start(ctx);
    FAIL() << "no error without weights";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((copy / "model.safetensors").string()), std::string::npos) << e.what();
  }
  fs::remove_all(copy);
}

}  // namespace
}  // namespace lvmflow
