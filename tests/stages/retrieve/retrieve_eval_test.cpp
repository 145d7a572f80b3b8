// retrieve.eval: Top-K accuracy checked against brute force, context exclusion, recall of
// approximate indexes, model labels, and bad input.
#include <gtest/gtest.h>

#include <set>

#include "pipeline/error.hpp"
#include "tests/stages/retrieve/retrieve_fixture.hpp"

namespace lvmflow {
namespace {

using testing::brute_force_top_k;
using testing::build_index;
using testing::clustered_chunks;
using testing::concat;
using testing::TestContext;

constexpr int kArticles = 10;
constexpr int kChunks = 12;
constexpr std::size_t kDim = 32;
constexpr int kContext = 3;

// lvm.predict-shaped rows: one per target position >= kContext of every article; the
// prediction is `make(target_row)`; every other row is a validation row.
template <class MakePrediction>
Batch predictions(const Batch& corpus, const std::string& model, MakePrediction make) {
  Batch b;
  b.dim = corpus.dim;
  for (std::size_t r = 0; r < corpus.rows(); ++r) {
    const std::int64_t position = corpus.int_column("position")[r];
    if (position < kContext) continue;
    b.ids.push_back(corpus.ids[r]);
    b.ints["article_id"].push_back(corpus.int_column("article_id")[r]);
    b.ints["target_position"].push_back(position);
    b.ints["split"].push_back(static_cast<std::int64_t>(b.ids.size() % 2));
    b.text["model"].push_back(model);
    const std::vector<float> v = make(r);
    b.vectors.insert(b.vectors.end(), v.begin(), v.end());
  }
  return b;
}

std::vector<float> noisy_copy(const Batch& corpus, std::size_t row, float noise, std::mt19937& rng) {
  std::normal_distribution<float> normal;
  std::vector<float> v(corpus.vector(row), corpus.vector(row) + corpus.dim);
  for (auto& x : v) x += noise * normal(rng);
  return v;
}

struct EvalRun {
  std::unique_ptr<TestContext> ctx;
  std::vector<Batch> out;
};

EvalRun run_eval(const TestContext& index_ctx, std::vector<std::pair<std::string, Batch>> inputs,
                 const std::map<std::string, std::string>& params = {}) {
  EvalRun run{std::make_unique<TestContext>("retrieve.eval", params), {}};
  std::vector<StageInput> stage_inputs{{"index", index_ctx.artifact_dir(), {}}};
  for (auto& [name, batch] : inputs) stage_inputs.push_back({name, {}, {batch}});
  auto stage = run.ctx->make_stage();
  run.out = testing::run_barrier(dynamic_cast<BarrierStage&>(*stage), *run.ctx, stage_inputs);
  return run;
}

// Expected Top-k share over the validation rows, by brute force; `exclude` drops the
// query's kContext preceding chunks from its ranking first.
double expected_top_k(const Batch& corpus, const Batch& preds, std::size_t k, bool exclude) {
  std::size_t hits = 0, queries = 0;
  for (std::size_t q = 0; q < preds.rows(); ++q) {
    if (preds.int_column("split")[q] != 1) continue;
    ++queries;
    const std::int64_t a = preds.int_column("article_id")[q], t = preds.int_column("target_position")[q];
    std::size_t rank = 0;
    for (const auto& h : brute_force_top_k(corpus, preds.vector(q), k + kContext)) {
      const std::int64_t ha = corpus.int_column("article_id")[h.row], hp = corpus.int_column("position")[h.row];
      if (exclude && ha == a && hp >= t - kContext && hp < t) continue;
      if (++rank > k) break;
      if (corpus.ids[h.row] == preds.ids[q]) {
        ++hits;
        break;
      }
    }
  }
  return double(hits) / double(queries);
}

TEST(RetrieveEval, TopKMatchesBruteForceOnValidationRows) {
  const auto chunks = clustered_chunks(kArticles, kChunks, kDim);
  const Batch corpus = concat(chunks);
  auto index_ctx = build_index(chunks);
  std::mt19937 rng(11);
  // Noise grows with the row, so ranks spread from 1 to beyond 20.
  Batch preds = predictions(corpus, "transformer", [&](std::size_t r) {
    return noisy_copy(corpus, r, 0.05f * float(r % 17), rng);
  });
  EvalRun run = run_eval(*index_ctx, {{"predict", preds}});
  const double val_rows = double(preds.rows() / 2);
  EXPECT_EQ(run.ctx->metric_value("queries", "transformer"), val_rows);
  for (std::size_t k : {1, 5, 10, 20}) {
    const double expected = expected_top_k(corpus, preds, k, false);
    EXPECT_NEAR(run.ctx->metric_value("top" + std::to_string(k), "transformer"), expected, 1e-12) << "k " << k;
  }
  EXPECT_GT(run.ctx->metric_value("top1", "transformer"), 0.0);
  EXPECT_LT(run.ctx->metric_value("top1", "transformer"), 1.0);
  // An exact index measures no recall; the table says the context was not excluded.
  EXPECT_THROW(run.ctx->metric_value("recall20", "transformer"), Error);
  const std::string table = run.ctx->text_metrics.at("retrieval_topk");
  EXPECT_NE(table.find("context chunks not excluded"), std::string::npos) << table;
  EXPECT_NE(table.find("| transformer | " + std::to_string(int(val_rows)) + " |"), std::string::npos) << table;
  EXPECT_EQ(run.ctx->logs.back(), table);
  ASSERT_EQ(run.out.size(), 1u);
  EXPECT_EQ(run.out[0].ids, std::vector<std::string>{"transformer"});
  EXPECT_DOUBLE_EQ(run.out[0].real_column("top5")[0], run.ctx->metric_value("top5", "transformer"));

  EvalRun all = run_eval(*index_ctx, {{"predict", preds}}, {{"split", "all"}});
  EXPECT_EQ(all.ctx->metric_value("queries", "transformer"), double(preds.rows()));
}

// The no-learning baselines, made from the indexed vectors, are rows of the table, and each
// model is judged against the strongest of them at the largest K (5 here: Top-20 of 120 chunks
// saturates).
TEST(RetrieveEval, BaselinesAreTableRowsAndModelsAreJudgedAgainstTheStrongest) {
  const auto chunks = clustered_chunks(kArticles, kChunks, kDim);
  const Batch corpus = concat(chunks);
  auto index_ctx = build_index(chunks);
  // Rows are ordered by article, then position: row r - 1 is the previous chunk.
  Batch echo = predictions(corpus, "echo", [&](std::size_t r) {
    return std::vector<float>(corpus.vector(r - 1), corpus.vector(r - 1) + corpus.dim);
  });
  Batch oracle = predictions(corpus, "oracle", [&](std::size_t r) {
    return std::vector<float>(corpus.vector(r), corpus.vector(r) + corpus.dim);
  });
  Batch context_mean = predictions(corpus, "mean", [&](std::size_t r) {
    std::vector<float> v(corpus.dim, 0.0f);
    for (std::size_t c = r - kContext; c < r; ++c)
      for (std::size_t i = 0; i < corpus.dim; ++i) v[i] += corpus.vector(c)[i] / float(kContext);
    return v;
  });
  EvalRun run = run_eval(*index_ctx, {{"echo", echo}, {"oracle", oracle}},
                         {{"context", std::to_string(kContext)}, {"ks", "[1, 5]"}});
  for (std::size_t k : {1, 5}) {
    const std::string top = "top" + std::to_string(k);
    // persistence = the last context chunk, which is what "echo" predicts.
    EXPECT_DOUBLE_EQ(run.ctx->metric_value(top, "persistence"), run.ctx->metric_value(top, "echo")) << k;
    EXPECT_NEAR(run.ctx->metric_value(top, "linear_average"), expected_top_k(corpus, context_mean, k, false), 1e-12) << k;
  }
  EXPECT_EQ(run.ctx->metric_value("top1", "oracle"), 1.0);
  EXPECT_EQ(run.ctx->metric_value("beats_best_baseline", "oracle"), 1.0);
  EXPECT_EQ(run.ctx->metric_value("beats_best_baseline", "echo"), 0.0);

  const std::string table = run.ctx->text_metrics.at("retrieval_topk");
  EXPECT_NE(table.find("| Top-5 vs strongest baseline |"), std::string::npos) << table;
  for (const char* name : {"| linear_average |", "| persistence |", "| corpus_mean |"})
    EXPECT_NE(table.find(name), std::string::npos) << name << "\n" << table;
  EXPECT_NE(table.find(" | strongest baseline |"), std::string::npos) << table;
  EXPECT_NE(table.find("| oracle | "), std::string::npos);
  EXPECT_NE(table.find(": beats |"), std::string::npos) << table;
  // Output rows stay one per model, each with its verdict cell.
  ASSERT_EQ(run.out.size(), 1u);
  EXPECT_EQ(run.out[0].ids, (std::vector<std::string>{"echo", "oracle"}));
  EXPECT_EQ(run.out[0].text_column("versus_best_baseline")[1].substr(0, 1), "+");
  bool sentence = false;
  for (const auto& line : run.ctx->logs) sentence |= line.rfind("oracle Top-5 100.00% vs best baseline ", 0) == 0;
  EXPECT_TRUE(sentence);
}

TEST(RetrieveEval, ExcludeContextDropsTheQuerysOwnPrecedingChunks) {
  const auto chunks = clustered_chunks(kArticles, kChunks, kDim);
  const Batch corpus = concat(chunks);
  auto index_ctx = build_index(chunks);
  // The "prediction" is the previous chunk itself: it always retrieves itself first.
  Batch preds = predictions(corpus, "copy_last", [&](std::size_t r) {
    return std::vector<float>(corpus.vector(r - 1), corpus.vector(r - 1) + kDim);
  });
  EvalRun kept = run_eval(*index_ctx, {{"predict", preds}});
  EXPECT_EQ(kept.ctx->metric_value("top1", "copy_last"), 0.0);

  EvalRun dropped = run_eval(*index_ctx, {{"predict", preds}},
                             {{"exclude_context", "true"}, {"context", std::to_string(kContext)}});
  for (std::size_t k : {1, 5, 10, 20})
    EXPECT_NEAR(dropped.ctx->metric_value("top" + std::to_string(k), "copy_last"),
                expected_top_k(corpus, preds, k, true), 1e-12) << "k " << k;
  EXPECT_GT(dropped.ctx->metric_value("top1", "copy_last"), 0.0);
  const std::string table = dropped.ctx->text_metrics.at("retrieval_topk");
  EXPECT_NE(table.find("own 3 context chunks excluded"), std::string::npos) << table;
  EXPECT_EQ(dropped.out[0].int_column("exclude_context")[0], 1);
}

TEST(RetrieveEval, ApproximateIndexReportsRecallAgainstExactSearch) {
  const auto chunks = clustered_chunks(kArticles, kChunks, kDim);
  const Batch corpus = concat(chunks);
  std::mt19937 rng(5);
  Batch preds = predictions(corpus, "gru", [&](std::size_t r) { return noisy_copy(corpus, r, 0.6f, rng); });
  auto ivf = build_index(chunks, {{"index", "IVF"}, {"nlist", "3"}, {"nprobe", "1"}});

  EvalRun one_probe = run_eval(*ivf, {{"predict", preds}});
  const double recall = one_probe.ctx->metric_value("recall20", "gru");
  EXPECT_GT(recall, 0.0);
  EXPECT_LE(recall, 1.0);
  // The exact columns come from the exact reference, i.e. brute force.
  EXPECT_NEAR(one_probe.ctx->metric_value("exact_top20", "gru"), expected_top_k(corpus, preds, 20, false), 1e-12);
  const std::string table = one_probe.ctx->text_metrics.at("retrieval_topk");
  EXPECT_NE(table.find("recall@20 vs exact"), std::string::npos) << table;
  EXPECT_NE(table.find("IVF3,Flat (nprobe 1)"), std::string::npos) << table;

  // Probing every list is exhaustive: recall 1 and the same accuracy as exact search.
  EvalRun all_probes = run_eval(*ivf, {{"predict", preds}}, {{"nprobe", "3"}});
  EXPECT_DOUBLE_EQ(all_probes.ctx->metric_value("recall20", "gru"), 1.0);
  EXPECT_DOUBLE_EQ(all_probes.ctx->metric_value("top20", "gru"),
                   all_probes.ctx->metric_value("exact_top20", "gru"));
}

TEST(RetrieveEval, ModelsAreLabelledAndMissingTargetsCountAsMisses) {
  const auto chunks = clustered_chunks(kArticles, kChunks, kDim);
  const Batch corpus = concat(chunks);
  auto index_ctx = build_index(chunks);
  auto exact = [&](std::size_t r) { return std::vector<float>(corpus.vector(r), corpus.vector(r) + kDim); };
  Batch lstm = predictions(corpus, "lstm", exact);
  Batch gru = predictions(corpus, "gru", exact);
  Batch lstm_again = predictions(corpus, "lstm", exact);
  lstm_again.ids[0] = "999:4";   // a validation row whose target chunk is not indexed
  EvalRun run = run_eval(*index_ctx, {{"a", lstm}, {"b", gru}, {"c", lstm_again}});
  EXPECT_EQ(run.ctx->metric_value("top1", "gru"), 1.0);
  EXPECT_EQ(run.ctx->metric_value("top1", "a/lstm"), 1.0);
  const double val_rows = double(lstm.rows() / 2);
  EXPECT_NEAR(run.ctx->metric_value("top1", "c/lstm"), (val_rows - 1) / val_rows, 1e-12);
  EXPECT_EQ(run.ctx->metric_value("missing_targets", "c/lstm"), 1.0);
  EXPECT_EQ(run.out.at(0).ids, (std::vector<std::string>{"a/lstm", "gru", "c/lstm"}));
}

TEST(RetrieveEval, BadInputGivesClearErrors) {
  const auto chunks = clustered_chunks(kArticles, kChunks, kDim);
  const Batch corpus = concat(chunks);
  auto index_ctx = build_index(chunks);
  auto expect_error = [](auto&& f, const std::string& fragment) {
    try {
      f();
      ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  Batch narrow = predictions(corpus, "m", [](std::size_t) { return std::vector<float>(kDim, 0.5f); });
  narrow.dim = 8;
  narrow.vectors.resize(narrow.rows() * 8);
  expect_error([&] { run_eval(*index_ctx, {{"p", narrow}}); }, "predictions are 8-D but the index holds 32-D");

  Batch train_only = predictions(corpus, "m", [&](std::size_t r) {
    return std::vector<float>(corpus.vector(r), corpus.vector(r) + kDim);
  });
  for (auto& s : train_only.ints["split"]) s = 0;
  expect_error([&] { run_eval(*index_ctx, {{"p", train_only}}); }, "has no 'val' predictions");

  Batch strangers = train_only;
  for (auto& id : strangers.ids) id = "elsewhere:" + id;
  expect_error([&] { run_eval(*index_ctx, {{"p", strangers}}, {{"split", "all"}}); },
               "is in the index (e.g. 'elsewhere:");
  expect_error([&] { run_eval(*index_ctx, {}); }, "needs a retrieve.index stage and at least one");
  expect_error([&] { TestContext("retrieve.eval", {{"ks", "[1, zero]"}}); }, "'zero' is not a positive integer");
  expect_error([&] { TestContext("retrieve.eval", {{"split", "test"}}); }, "must be val, train or all");
}

}  // namespace
}  // namespace lvmflow
