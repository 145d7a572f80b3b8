#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "pipeline/error.hpp"
#include "stages/common/baseline_verdict.hpp"
#include "stages/common/json.hpp"
#include "stages/common/npy.hpp"
#include "tests/stages/lvm/lvm_test_data.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow {
namespace {

// Trains a tiny model through the lvm.train stage; returns its context (owns the artifact dir).
std::unique_ptr<testing::TestContext> train_stage(const std::string& arch, const testdata::SyntheticWindows& windows) {
  auto ctx = std::make_unique<testing::TestContext>(
      "lvm.train", std::map<std::string, std::string>{{"arch", arch}, {"hidden", "16"}, {"layers", "1"},
                                                      {"epochs", "2"}, {"batch_size", "16"}, {"resume", "false"}});
  auto stage = ctx->make_stage();
  std::vector<StageInput> inputs = {windows.input()};
  auto out = testing::run_barrier(dynamic_cast<BarrierStage&>(*stage), *ctx, inputs);
  EXPECT_EQ(out.size(), 1u);
  if (!out.empty()) EXPECT_EQ(out[0].text_column("arch"), std::vector<std::string>{arch});
  return ctx;
}

TEST(LvmTrainStage, WritesCheckpointWithConfigMetricsAndEncoder) {
  auto windows = testdata::synthetic_window_batches();
  {
    std::ofstream(windows->dir / "encoder.json") << R"({"type": "encode.hashed", "dim": 32, "model_fingerprint": "abc123"})";
  }
  auto ctx = train_stage("lstm", *windows);
  const auto dir = ctx->artifact_dir();
  ASSERT_TRUE(std::filesystem::exists(dir / "model.safetensors"));
  Json info = read_json_file((dir / "model.json").string());
  EXPECT_EQ(info.at("arch").as_string(), "lstm");
  EXPECT_EQ(info.at("model").at("hidden").as_int(), 16);
  EXPECT_EQ(info.at("context").as_int(), 3);
  EXPECT_EQ(info.at("dim").as_int(), 32);
  EXPECT_EQ(info.at("metrics").at("history").as_array().size(), 2u);
  EXPECT_EQ(info.at("encoder").at("type").as_string(), "encode.hashed");
  EXPECT_EQ(info.at("encoder_fingerprint").as_string(), "abc123");
  EXPECT_GT(info.at("windows").at("val").as_int(), 0);
  EXPECT_GT(ctx->metric_value("params", "lstm"), 0);
  // Chunks straight from an encoder (no window layout) are refused with the stage's name.
  testing::TestContext wrong_input("lvm.train", {{"arch", "amn"}, {"resume", "false"}});
  auto stage = wrong_input.make_stage();
  std::vector<StageInput> chunk_inputs(1);
  SyntheticCorpusOptions corpus;
  corpus.articles = 2, corpus.dim = 8;
  chunk_inputs[0].batches = {make_synthetic_chunks(corpus)};
  try {
    testing::run_barrier(dynamic_cast<BarrierStage&>(*stage), wrong_input, chunk_inputs);
    FAIL() << "chunks accepted as windows";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not seq.window output"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("lvm.train"), std::string::npos) << e.what();
  }
  EXPECT_THROW(testing::TestContext("lvm.train", {{"arch", "mamba"}}), Error);
  EXPECT_THROW(testing::TestContext("lvm.train", {{"loss", "l1"}}), Error);
}

// The engine gives every run a fresh staging folder; a rerun must still find the interrupted
// run's state (StageContext::resume_dir, shared by TestContexts) and continue from there.
TEST(LvmTrainStage, RerunAfterInterruptionResumesInANewStagingFolder) {
  auto windows = testdata::synthetic_window_batches();
  const std::map<std::string, std::string> params = {{"arch", "amn"}, {"hidden", "8"}, {"epochs", "3"},
                                                     {"batch_size", "16"}, {"seed", "913"}};
  std::vector<StageInput> inputs = {windows->input()};
  struct CancelAfterFirstEpoch : testing::TestContext {
    using TestContext::TestContext;
    void metric(const std::string& name, double value, std::int64_t step, const std::string& label) override {
      TestContext::metric(name, value, step, label);
      if (name == "lr") cancel_ = true;
    }
  } first("lvm.train", params);
  auto stage = first.make_stage();
  EXPECT_THROW(testing::run_barrier(dynamic_cast<BarrierStage&>(*stage), first, inputs), Error);
  EXPECT_FALSE(std::filesystem::exists(first.artifact_dir() / "model.safetensors"));

  testing::TestContext second("lvm.train", params);
  ASSERT_NE(second.artifact_dir(), first.artifact_dir());
  ASSERT_EQ(second.artifact_dir().parent_path(), first.artifact_dir().parent_path());
  auto stage2 = second.make_stage();
  testing::run_barrier(dynamic_cast<BarrierStage&>(*stage2), second, inputs);
  bool resumed = false;
  for (const auto& line : second.logs) resumed |= line.find("resuming after epoch 1") != std::string::npos;
  EXPECT_TRUE(resumed);
  Json info = read_json_file((second.artifact_dir() / "model.json").string());
  EXPECT_EQ(info.at("metrics").at("resumed_from_epoch").as_int(), 1);
  EXPECT_EQ(info.at("metrics").at("history").as_array().size(), 3u);
  // The interrupted epoch's metrics are repeated for the new run: epochs 1..3 all present.
  std::set<std::int64_t> epochs;
  for (const auto& m : second.metrics)
    if (m.name == "val_cosine") epochs.insert(m.step);
  EXPECT_EQ(epochs, (std::set<std::int64_t>{1, 2, 3}));

  // Once the checkpoint is written the resume state is gone: a third run starts fresh.
  testing::TestContext third("lvm.train", params);
  auto stage3 = third.make_stage();
  testing::run_barrier(dynamic_cast<BarrierStage&>(*stage3), third, inputs);
  for (const auto& line : third.logs) EXPECT_EQ(line.find("resuming"), std::string::npos) << line;
}

TEST(LvmPredictStage, PredictsEveryWindowAndRollsOut) {
  auto windows = testdata::synthetic_window_batches();
  auto trained = train_stage("gru", *windows);
  testing::TestContext ctx("lvm.predict", {{"rollout_steps", "3"}});
  ctx.add_input("windows", windows->dir);
  ctx.add_input("train_gru", trained->artifact_dir());
  auto stage = ctx.make_stage();
  auto& map = dynamic_cast<MapStage&>(*stage);
  map.start(ctx);
  std::size_t rows = 0;
  for (const Batch& in : windows->batches) {
    Batch out = map.process(ctx, in);
    map.consume_ordered(ctx, out);
    ASSERT_EQ(out.rows(), in.rows());
    EXPECT_EQ(out.dim, 32u);
    EXPECT_EQ(out.ids, in.ids);
    EXPECT_EQ(out.text_column("model").front(), "train_gru");
    for (double c : out.real_column("cosine")) EXPECT_TRUE(c >= -1.0001 && c <= 1.0001);
    for (double g : out.real_column("rollout_degeneration")) EXPECT_TRUE(g >= -1.0001 && g <= 1.0001);
    rows += out.rows();
  }
  map.finish(ctx);
  NpyArray rollout = read_npy(ctx.artifact_dir() / "rollout.npy");
  EXPECT_EQ(rollout.shape, (std::vector<std::int64_t>{std::int64_t(rows), 3 * 32}));
  // The predictions are kept once, in vectors.npy, in stream order (batches.bin refers to it).
  NpyArray predictions = read_npy(ctx.artifact_dir() / "vectors.npy");
  EXPECT_EQ(predictions.shape, (std::vector<std::int64_t>{std::int64_t(rows), 32}));
  EXPECT_EQ(ctx.metric_value("windows", "train_gru"), double(rows));
  double degeneration = ctx.metric_value("rollout_degeneration", "train_gru");
  EXPECT_TRUE(degeneration > -1 && degeneration <= 1);

  testing::TestContext lonely("lvm.predict");
  lonely.add_input("windows", {});
  auto s2 = lonely.make_stage();
  EXPECT_THROW(dynamic_cast<MapStage&>(*s2).start(lonely), Error);
}

TEST(LvmEvalStage, TabulatesModelsAndBaselinesSideBySide) {
  auto windows = testdata::synthetic_window_batches();
  auto amn = train_stage("amn", *windows);
  auto transformer = train_stage("transformer", *windows);
  testing::TestContext ctx("lvm.eval");
  std::vector<StageInput> inputs(3);
  inputs[0] = windows->input();
  inputs[1].name = "train_amn";
  inputs[1].dir = amn->artifact_dir();
  inputs[2].name = "train_transformer";
  inputs[2].dir = transformer->artifact_dir();
  auto stage = ctx.make_stage();
  auto out = testing::run_barrier(dynamic_cast<BarrierStage&>(*stage), ctx, inputs);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ids, (std::vector<std::string>{"linear_average", "persistence", "corpus_mean", "random",
                                                  "train_amn", "train_transformer"}));
  const std::string& table = ctx.text_metrics.at("eval_table");
  for (const auto& name : out[0].ids) EXPECT_NE(table.find(name), std::string::npos) << name;
  EXPECT_EQ(ctx.metric_value("gain_vs_linear_average", "linear_average"), 0.0);
  EXPECT_GT(ctx.metric_value("val_cosine", "linear_average"), ctx.metric_value("val_cosine", "random"));
  EXPECT_GT(ctx.metric_value("latency_ms", "train_transformer"), 0.0);
  EXPECT_EQ(ctx.metric_value("params", "train_amn"), double(out[0].int_column("params")[4]));

  // Every model is judged against the STRONGEST baseline, which the table names; the training
  // log says the same thing in words.
  std::string best;
  for (const auto& name : {"linear_average", "persistence", "corpus_mean", "random"})
    if (best.empty() || ctx.metric_value("val_cosine", name) > ctx.metric_value("val_cosine", best)) best = name;
  EXPECT_EQ(ctx.metric_value("gain_vs_best_baseline", best), 0.0);
  EXPECT_NE(table.find("minus the strongest baseline's (" + best + ")"), std::string::npos) << table;
  const auto& verdicts = out[0].text_column("verdict");
  EXPECT_EQ(verdicts[std::find(out[0].ids.begin(), out[0].ids.end(), best) - out[0].ids.begin()], "best");
  for (std::size_t i = 4; i < 6; ++i) {
    const double gain = ctx.metric_value("gain_vs_best_baseline", out[0].ids[i]);
    const std::set<std::string> words = {"beats", "noise", "WORSE"};
    EXPECT_TRUE(words.count(verdicts[i])) << verdicts[i];
    if (std::abs(gain) <= kMinBaselineMargin) EXPECT_EQ(verdicts[i], "noise") << gain;
    if (verdicts[i] == "beats") EXPECT_GT(gain, kMinBaselineMargin);
    if (verdicts[i] == "WORSE") EXPECT_LT(gain, -kMinBaselineMargin);
    EXPECT_EQ(ctx.metric_value("beats_best_baseline", out[0].ids[i]), verdicts[i] == "beats" ? 1.0 : 0.0);
  }
  bool sentence = false;
  for (const auto& line : ctx.logs) sentence |= line.find("train_amn ") != std::string::npos &&
                                                line.find(" vs best baseline " + best + " ") != std::string::npos;
  EXPECT_TRUE(sentence);
  bool train_sentence = false;
  for (const auto& line : amn->logs) train_sentence |= line.find("amn: best epoch ") != std::string::npos &&
                                                       line.find(" vs best baseline " + best + " ") != std::string::npos;
  EXPECT_TRUE(train_sentence);

  // A model trained on other vectors is refused with a fix.
  auto other = testdata::synthetic_window_batches(24);
  inputs[0] = other->input();
  EXPECT_THROW(testing::run_barrier(dynamic_cast<BarrierStage&>(*stage), ctx, inputs), Error);
}

TEST(LvmEvalStage, ReducedPrecisionReportsItsValCosineChange) {
  auto windows = testdata::synthetic_window_batches();
  auto gru = train_stage("gru", *windows);
  testing::TestContext ctx("lvm.eval", {{"dtype", "int8"}});
  std::vector<StageInput> inputs(2);
  inputs[0] = windows->input();
  inputs[1].name = "train_gru";
  inputs[1].dir = gru->artifact_dir();
  auto stage = ctx.make_stage();
  testing::run_barrier(dynamic_cast<BarrierStage&>(*stage), ctx, inputs);
  const double change = ctx.metric_value("val_cosine_change_vs_float32", "train_gru");
  EXPECT_NE(change, 0.0);
  EXPECT_LE(std::abs(change), 0.002);
  EXPECT_NE(ctx.text_metrics.at("eval_table").find("int8 weights"), std::string::npos);
  EXPECT_THROW(testing::TestContext("lvm.eval", {{"dtype", "fp16"}}).make_stage(), Error);
}

}  // namespace
}  // namespace lvmflow
