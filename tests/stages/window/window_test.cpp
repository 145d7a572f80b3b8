#include <gtest/gtest.h>

#include <set>

#include "pipeline/error.hpp"
#include "stages/window/sequence_windows.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow {
namespace {

// Chunk rows as encode.* emits them; vector of chunk (a, p) is [a, p, a*100+p].
Batch chunk_batch(const std::vector<std::pair<std::int64_t, std::int64_t>>& article_positions) {
  Batch b;
  b.dim = 3;
  for (auto [a, p] : article_positions) {
    b.ids.push_back(std::to_string(a) + ":" + std::to_string(p));
    b.ints["article_id"].push_back(a);
    b.ints["position"].push_back(p);
    b.vectors.insert(b.vectors.end(), {float(a), float(p), float(a * 100 + p)});
  }
  return b;
}

Batch articles(std::int64_t first, std::int64_t count, std::int64_t chunks_each) {
  std::vector<std::pair<std::int64_t, std::int64_t>> rows;
  for (std::int64_t a = first; a < first + count; ++a)
    for (std::int64_t p = 0; p < chunks_each; ++p) rows.emplace_back(a, p);
  return chunk_batch(rows);
}

Batch merged(const std::vector<Batch>& batches) {
  Batch all = batches.at(0);
  for (std::size_t i = 1; i < batches.size(); ++i) all.append(batches[i]);
  return all;
}

TEST(SequenceWindows, ContextAndTargetInPositionOrderAcrossBatches) {
  // Article 7 arrives out of order and split over two batches; article 3 is too short.
  std::vector<Batch> in = {chunk_batch({{7, 2}, {7, 0}, {3, 0}, {7, 3}}), chunk_batch({{7, 1}, {3, 1}})};
  WindowOptions opt;
  opt.context = 2;
  opt.val_fraction = 0;
  WindowStats stats;
  Batch w = merged(make_windows(in, opt, "test", &stats));
  ASSERT_EQ(w.rows(), 2u);
  EXPECT_EQ(w.dim, 9u);
  EXPECT_EQ(w.ids, (std::vector<std::string>{"7:2", "7:3"}));
  EXPECT_EQ(w.int_column("target_position"), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(w.int_column("article_id"), (std::vector<std::int64_t>{7, 7}));
  // Second window: context positions 1, 2 then target 3.
  std::vector<float> expected = {7, 1, 701, 7, 2, 702, 7, 3, 703};
  EXPECT_EQ(std::vector<float>(w.vector(1), w.vector(1) + 9), expected);
  EXPECT_EQ(stats.chunks, 6u);
  EXPECT_EQ(stats.articles, 2u);
  EXPECT_EQ(stats.articles_too_short, 1u);
  EXPECT_EQ(stats.windows_train, 2u);
}

TEST(SequenceWindows, SplitByArticleHasNoOverlapAndIsStable) {
  WindowOptions opt;
  opt.context = 2;
  opt.val_fraction = 0.3;
  opt.rows_per_batch = 7;   // several output batches
  WindowStats stats;
  std::vector<Batch> out = make_windows({articles(0, 40, 5)}, opt, "test", &stats);
  EXPECT_GT(out.size(), 1u);
  Batch w = merged(out);
  std::set<std::int64_t> train, val;
  for (std::size_t r = 0; r < w.rows(); ++r)
    (w.int_column("split")[r] == kValSplit ? val : train).insert(w.int_column("article_id")[r]);
  for (auto a : val) EXPECT_EQ(train.count(a), 0u) << "article " << a << " on both sides";
  EXPECT_EQ(stats.articles_val, val.size());
  EXPECT_EQ(stats.articles_train, train.size());
  EXPECT_GT(val.size(), 3u);
  EXPECT_LT(val.size(), 25u);
  EXPECT_EQ(stats.windows_val + stats.windows_train, 40u * 3u);

  // Adding articles and shuffling the input order moves no existing article across.
  Batch more = articles(40, 20, 5);
  Batch first = articles(0, 40, 5);
  Batch w2 = merged(make_windows({more, first}, opt, "test"));
  for (std::size_t r = 0; r < w2.rows(); ++r) {
    std::int64_t a = w2.int_column("article_id")[r];
    if (a < 40) EXPECT_EQ(w2.int_column("split")[r] == kValSplit, val.count(a) == 1) << "article " << a;
  }
  // Another seed gives another split.
  opt.seed = 7;
  Batch w3 = merged(make_windows({first}, opt, "test"));
  EXPECT_NE(w3.int_column("split"), w.int_column("split"));
}

TEST(SequenceWindows, SmallCorpusStillGetsValidationArticle) {
  WindowOptions opt;
  opt.context = 1;
  opt.val_fraction = 0.01;
  WindowStats stats;
  make_windows({articles(0, 3, 3)}, opt, "test", &stats);
  EXPECT_EQ(stats.articles_val, 1u);
  EXPECT_EQ(stats.articles_train, 2u);
}

TEST(SequenceWindows, BadInputIsAClearError) {
  WindowOptions opt;
  Batch dup = chunk_batch({{1, 0}, {1, 0}, {1, 1}});
  try {
    make_windows({dup}, opt, "stage w");
    FAIL() << "duplicate position accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("position 0 twice"), std::string::npos) << e.what();
  }
  Batch no_vectors = chunk_batch({{1, 0}});
  no_vectors.dim = 0;
  no_vectors.vectors.clear();
  EXPECT_THROW(make_windows({no_vectors}, opt, "stage w"), Error);
  Batch no_position = chunk_batch({{1, 0}});
  no_position.ints.erase("position");
  EXPECT_THROW(make_windows({no_position}, opt, "stage w"), Error);
}

TEST(SequenceWindowStage, RecordsSizesAsMetrics) {
  testing::TestContext ctx("seq.window", {{"context", "3"}, {"val_fraction", "0.25"}, {"seed", "5"}});
  auto stage = ctx.make_stage();
  std::vector<StageInput> inputs(1);
  inputs[0].batches = {articles(0, 12, 6)};
  auto out = testing::run_barrier(dynamic_cast<BarrierStage&>(*stage), ctx, inputs);
  Batch w = merged(out);
  EXPECT_EQ(w.rows(), 12u * 3u);
  EXPECT_EQ(w.dim, 12u);
  EXPECT_EQ(ctx.metric_value("windows_train") + ctx.metric_value("windows_val"), 36.0);
  EXPECT_EQ(ctx.metric_value("articles_train") + ctx.metric_value("articles_val"), 12.0);
  EXPECT_GE(ctx.metric_value("articles_val"), 1.0);
  EXPECT_THROW(testing::TestContext("seq.window", {{"context", "0"}}), Error);
}

}  // namespace
}  // namespace lvmflow
