#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "pipeline/error.hpp"
#include "pipeline/vector_file.hpp"
#include "stages/common/npy.hpp"
#include "stages/seq/sequence_windows.hpp"
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

// make_windows over in-memory chunk batches, into a fresh folder (vectors.npy lands there).
struct Windowed {
  std::filesystem::path dir = testing::make_temp_dir("lvmflow-window");
  std::vector<Batch> batches;
  ~Windowed() { std::filesystem::remove_all(dir); }
  // Context then target vectors of window row `r` of the merged output: (N + 1) x D floats.
  std::vector<float> window(const Batch& w, std::size_t r, std::size_t dim) const {
    VectorFile file(dir / VectorFile::kFileName);
    const auto n = static_cast<std::size_t>(w.int_column("context")[r]);
    std::vector<float> out((n + 1) * dim);
    file.read_rows(static_cast<std::size_t>(w.int_column("target_row")[r]) - n, n + 1, out.data());
    return out;
  }
};

Windowed windowed(const std::vector<Batch>& chunks, const WindowOptions& opt, WindowStats* stats = nullptr) {
  Windowed w;
  StageInput input{"chunks", {}, chunks};
  w.batches = make_windows(input, w.dir, opt, "test", stats);
  return w;
}

TEST(SequenceWindows, ContextAndTargetInPositionOrderAcrossBatches) {
  // Article 7 arrives out of order and split over two batches; article 3 is too short.
  std::vector<Batch> in = {chunk_batch({{7, 2}, {7, 0}, {3, 0}, {7, 3}}), chunk_batch({{7, 1}, {3, 1}})};
  WindowOptions opt;
  opt.context = 2;
  opt.val_fraction = 0;
  WindowStats stats;
  Windowed out = windowed(in, opt, &stats);
  Batch w = merged(out.batches);
  ASSERT_EQ(w.rows(), 2u);
  EXPECT_EQ(w.dim, 0u);   // windows refer to vectors.npy rows; they carry no vectors
  EXPECT_EQ(w.ids, (std::vector<std::string>{"7:2", "7:3"}));
  EXPECT_EQ(w.int_column("target_position"), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(w.int_column("article_id"), (std::vector<std::int64_t>{7, 7}));
  // Second window: context positions 1, 2 then target 3.
  std::vector<float> expected = {7, 1, 701, 7, 2, 702, 7, 3, 703};
  EXPECT_EQ(out.window(w, 1, 3), expected);
  EXPECT_FALSE(stats.vectors_linked);   // out-of-order input: rows rewritten in article order
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
  Windowed out = windowed({articles(0, 40, 5)}, opt, &stats);
  EXPECT_GT(out.batches.size(), 1u);
  Batch w = merged(out.batches);
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
  Batch w2 = merged(windowed({more, first}, opt).batches);
  for (std::size_t r = 0; r < w2.rows(); ++r) {
    std::int64_t a = w2.int_column("article_id")[r];
    if (a < 40) EXPECT_EQ(w2.int_column("split")[r] == kValSplit, val.count(a) == 1) << "article " << a;
  }
  // Another seed gives another split.
  opt.seed = 7;
  Batch w3 = merged(windowed({first}, opt).batches);
  EXPECT_NE(w3.int_column("split"), w.int_column("split"));
}

TEST(SequenceWindows, SmallCorpusStillGetsValidationArticle) {
  WindowOptions opt;
  opt.context = 1;
  opt.val_fraction = 0.01;
  WindowStats stats;
  windowed({articles(0, 3, 3)}, opt, &stats);
  EXPECT_EQ(stats.articles_val, 1u);
  EXPECT_EQ(stats.articles_train, 2u);
}

TEST(SequenceWindows, BadInputIsAClearError) {
  WindowOptions opt;
  Batch dup = chunk_batch({{1, 0}, {1, 0}, {1, 1}});
  try {
    windowed({dup}, opt);
    FAIL() << "duplicate position accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("position 0 twice"), std::string::npos) << e.what();
  }
  Batch no_vectors = chunk_batch({{1, 0}});
  no_vectors.dim = 0;
  no_vectors.vectors.clear();
  EXPECT_THROW(windowed({no_vectors}, opt), Error);
  Batch no_position = chunk_batch({{1, 0}});
  no_position.ints.erase("position");
  EXPECT_THROW(windowed({no_position}, opt), Error);
}

TEST(SequenceWindowStage, RecordsSizesAsMetrics) {
  testing::TestContext ctx("seq.window", {{"context", "3"}, {"val_fraction", "0.25"}, {"seed", "5"}});
  auto stage = ctx.make_stage();
  std::vector<StageInput> inputs(1);
  inputs[0].batches = {articles(0, 12, 6)};
  auto out = testing::run_barrier(dynamic_cast<BarrierStage&>(*stage), ctx, inputs);
  Batch w = merged(out);
  EXPECT_EQ(w.rows(), 12u * 3u);
  EXPECT_EQ(read_npy(ctx.artifact_dir() / "vectors.npy").shape, (std::vector<std::int64_t>{12 * 6, 3}));
  EXPECT_EQ(ctx.metric_value("windows_train") + ctx.metric_value("windows_val"), 36.0);
  EXPECT_EQ(ctx.metric_value("articles_train") + ctx.metric_value("articles_val"), 12.0);
  EXPECT_GE(ctx.metric_value("articles_val"), 1.0);
  EXPECT_THROW(testing::TestContext("seq.window", {{"context", "0"}}), Error);
}

// The engine's path: the input is a committed artifact whose batches.bin refers to its
// vectors.npy. The windows' vectors.npy is then the same file (a hard link, no bytes copied),
// and every window reads the same context and target vectors as windows over in-memory rows.
TEST(SequenceWindows, StreamedInputIsLinkedNotCopied) {
  const auto input_dir = testing::make_temp_dir("lvmflow-window-input");
  std::vector<Batch> chunks = {articles(0, 6, 4), articles(6, 5, 7)};
  {
    std::ofstream out(input_dir / "batches.bin", std::ios::binary);
    NpyWriter vectors(input_dir / "vectors.npy", 3);
    std::int64_t row = 0;
    for (const Batch& b : chunks) {
      write_batch(out, b, row);
      vectors.append(b.vectors.data(), b.rows());
      row += static_cast<std::int64_t>(b.rows());
    }
    vectors.close();
  }
  // The records name their file rows instead of holding vectors.
  {
    std::ifstream in(input_dir / "batches.bin", std::ios::binary);
    Batch b;
    ASSERT_TRUE(read_batch(in, b, "test"));
    EXPECT_EQ(b.dim, 0u);
    EXPECT_TRUE(b.vectors.empty());
    ASSERT_TRUE(read_batch(in, b, "test"));
    EXPECT_EQ(b.vector_file_row, 6 * 4);
  }
  WindowOptions opt;
  opt.context = 3;
  opt.val_fraction = 0.2;
  WindowStats stats;
  Windowed streamed;
  streamed.batches = make_windows(StageInput{"chunks", input_dir, {}, true}, streamed.dir, opt, "test", &stats);
  EXPECT_TRUE(stats.vectors_linked);
  EXPECT_EQ(std::filesystem::hard_link_count(streamed.dir / "vectors.npy"), 2u);
  EXPECT_TRUE(std::filesystem::equivalent(streamed.dir / "vectors.npy", input_dir / "vectors.npy"));

  Windowed in_memory = windowed(chunks, opt);
  Batch a = merged(streamed.batches), b = merged(in_memory.batches);
  ASSERT_EQ(a.rows(), 6u * 1u + 5u * 4u);
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_EQ(a.int_column("split"), b.int_column("split"));
  for (std::size_t r = 0; r < a.rows(); ++r) EXPECT_EQ(streamed.window(a, r, 3), in_memory.window(b, r, 3)) << r;
  std::filesystem::remove_all(input_dir);
}

}  // namespace
}  // namespace lvmflow
