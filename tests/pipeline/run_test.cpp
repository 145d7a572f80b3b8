// Plan and cache behaviour, ordering under concurrency, backpressure, failure and cancel.
#include <gtest/gtest.h>

#include <thread>

#include "pipeline/error.hpp"
#include "tests/pipeline/pipeline_fixture.hpp"

namespace lvmflow::testing {
namespace {

const char* kChain = R"(pipeline: chain
store: store
stages:
  - name: numbers
    type: testing.sequence
    params: {count: 200}
    batch_size: 10
  - name: squares
    type: testing.map
    inputs: [numbers]
    params: {op: square}
  - name: plus
    type: testing.map
    inputs: [squares]
    params: {op: add, operand: 1}
  - name: side
    type: testing.map
    inputs: [numbers]
    params: {op: multiply, operand: 3}
  - name: total
    type: testing.collect
    inputs: [plus, side]
)";

using RunTest = PipelineFixture;

TEST_F(RunTest, RerunReplaysEverythingFromTheStore) {
  auto s = spec(kChain);
  auto first = run(s);
  ASSERT_EQ(first.status, "succeeded") << first.error;
  for (const auto& [stage, action] : actions(s, first.run_id)) EXPECT_EQ(action, "run") << stage;

  auto second = run(s);
  ASSERT_EQ(second.status, "succeeded") << second.error;
  for (const auto& [stage, action] : actions(s, second.run_id)) EXPECT_EQ(action, "cached") << stage;
  Store store(s.store);
  EXPECT_TRUE(store.spans(second.run_id).empty()) << "a fully cached run does no stage work";
  // sum over i<200 of (i^2 + 1) and of 3i
  std::string expected = "plus 2646900 200\nside 59700 200\n";
  EXPECT_EQ(summary(s, first.plan.stages.back().key), expected);
}

TEST_F(RunTest, ChangingOneParamRerunsThatStageAndWhatDependsOnIt) {
  run(spec(kChain));
  auto s = spec(kChain, {"plus.operand=2"});
  auto r = run(s);
  ASSERT_EQ(r.status, "succeeded") << r.error;
  auto a = actions(s, r.run_id);
  EXPECT_EQ(a["numbers"], "cached");   // no stage that runs reads it
  EXPECT_EQ(a["squares"], "replay");
  EXPECT_EQ(a["plus"], "run");
  EXPECT_EQ(a["side"], "replay");
  EXPECT_EQ(a["total"], "run");
  EXPECT_EQ(summary(s, r.plan.stages.back().key), "plus 2647100 200\nside 59700 200\n");
}

TEST_F(RunTest, ForceAndUntil) {
  auto s = spec(kChain);
  run(s);
  PlanOptions force;
  force.force = {"squares"};
  auto r = run(s, force);
  auto a = actions(s, r.run_id);
  EXPECT_EQ(a["squares"], "run");
  EXPECT_EQ(a["numbers"], "replay");
  EXPECT_EQ(a["plus"], "cached") << "same key: its stored output stays valid";

  auto fresh = spec(std::string(kChain), {"numbers.count=50"});
  PlanOptions until;
  until.until = "squares";
  auto u = run(fresh, until);
  ASSERT_EQ(u.status, "succeeded") << u.error;
  auto b = actions(fresh, u.run_id);
  EXPECT_EQ(b["numbers"], "run");
  EXPECT_EQ(b["squares"], "run");
  EXPECT_EQ(b["plus"], "skipped");
  EXPECT_EQ(b["total"], "skipped");
}

TEST_F(RunTest, SourceFileFingerprintEntersTheKey) {
  auto data = write("lines.txt", "alpha\nbeta\n");
  std::string yaml = "pipeline: files\nstore: store\nstages:\n  - name: lines\n    type: testing.lines\n"
                     "    params: {path: lines.txt}\n  - name: total\n    type: testing.collect\n    inputs: [lines]\n";
  auto s = spec(yaml);
  auto r1 = run(s);
  ASSERT_EQ(r1.status, "succeeded") << r1.error;
  EXPECT_EQ(summary(s, r1.plan.stages.back().key), "lines 9 2\n");
  EXPECT_EQ(actions(s, run(s).run_id)["lines"], "cached");
  std::ofstream(data) << "alpha\nbeta\ngamma!\n";
  auto r3 = run(s);
  EXPECT_EQ(actions(s, r3.run_id)["lines"], "run");
  EXPECT_EQ(summary(s, r3.plan.stages.back().key), "lines 15 3\n");
}

TEST_F(RunTest, OrderIsDeterministicWhateverTheConcurrency) {
  std::string yaml = R"(pipeline: order
store: store
stages:
  - name: numbers
    type: testing.sequence
    params: {count: 300}
    batch_size: 3
  - name: jitter
    type: testing.map
    inputs: [numbers]
    concurrency: 4
    params: {op: multiply, operand: 1, jitter_ms: 3}
  - name: rebatched
    type: testing.map
    inputs: [jitter]
    concurrency: 3
    batch_size: 7
    params: {op: multiply, operand: 1, jitter_ms: 2}
  - name: total
    type: testing.collect
    inputs: [jitter, rebatched]
)";
  auto s = spec(yaml);
  auto r = run(s, {}, 16);
  ASSERT_EQ(r.status, "succeeded") << r.error;
  EXPECT_EQ(summary(s, r.plan.stages.back().key), "jitter 44850 300\nrebatched 44850 300\n");
  Store store(s.store);
  std::int64_t in_order = 0;
  for (const auto& m : store.metrics(r.run_id)) in_order += m.name == "sum";
  EXPECT_EQ(in_order, 2);
  // testing.collect records whether ids ascended; read its stored output.
  std::ifstream in(store.artifact_path(r.plan.stages.back().key) / "batches.bin", std::ios::binary);
  Batch b;
  ASSERT_TRUE(read_batch(in, b, "test"));
  EXPECT_EQ(b.int_column("in_order"), (std::vector<std::int64_t>{1, 1}));
  // Concurrency really happened: some batches of `jitter` overlapped in time.
  auto spans = store.spans(r.run_id);
  int overlaps = 0;
  for (std::size_t i = 0; i < spans.size(); ++i)
    for (std::size_t j = i + 1; j < spans.size(); ++j)
      if (spans[i].stage == "jitter" && spans[j].stage == "jitter" && spans[j].start_ns < spans[i].end_ns) ++overlaps;
  EXPECT_GT(overlaps, 0);
}

TEST_F(RunTest, BackpressureBoundsBatchesInFlight) {
  std::string yaml = R"(pipeline: pressure
store: store
stages:
  - name: fast
    type: testing.sequence
    params: {count: 60}
    batch_size: 1
  - name: slow
    type: testing.map
    inputs: [fast]
    params: {op: square, delay_ms: 4}
  - name: total
    type: testing.collect
    inputs: [slow]
)";
  auto s = spec(yaml);
  const std::size_t limit = 3;
  auto r = run(s, {}, limit);
  ASSERT_EQ(r.status, "succeeded") << r.error;
  Store store(s.store);
  auto spans = store.spans(r.run_id);
  std::vector<std::int64_t> produced, consumed;
  for (const auto& sp : spans) {
    if (sp.stage == "fast") produced.push_back(sp.start_ns);
    if (sp.stage == "slow") consumed.push_back(sp.end_ns);
  }
  std::sort(produced.begin(), produced.end());
  std::sort(consumed.begin(), consumed.end());
  ASSERT_EQ(produced.size(), 60u);
  // When the source starts batch k, at least k - limit batches have left the slow stage.
  std::size_t worst_lead = 0;
  for (std::size_t k = 0; k < produced.size(); ++k) {
    std::size_t done = std::upper_bound(consumed.begin(), consumed.end(), produced[k]) - consumed.begin();
    worst_lead = std::max(worst_lead, k - std::min(k, done));
  }
  EXPECT_LE(worst_lead, limit + 1);
  EXPECT_GE(worst_lead, 1u);
}

TEST_F(RunTest, FirstErrorFailsTheRunAndNamesStageAndItem) {
  std::string yaml = R"(pipeline: failing
store: store
stages:
  - name: numbers
    type: testing.sequence
    params: {count: 500}
    batch_size: 5
  - name: ok
    type: testing.collect
    inputs: [numbers]
  - name: boom
    type: testing.map
    inputs: [numbers]
    concurrency: 2
    params: {op: square, fail_at: 123, delay_ms: 1}
  - name: total
    type: testing.collect
    inputs: [boom]
)";
  auto s = spec(yaml);
  auto r = run(s);
  EXPECT_EQ(r.status, "failed");
  EXPECT_NE(r.error.find("stage 'boom'"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("item-123"), std::string::npos) << r.error;
  Store store(s.store);
  EXPECT_EQ(store.run(r.run_id)->status, "failed");
  EXPECT_FALSE(store.find_cache(r.plan.stages[r.plan.index_of("boom")].key));
  EXPECT_FALSE(store.find_cache(r.plan.stages[r.plan.index_of("total")].key));
  // Nothing half-written is left to be taken as an artifact.
  EXPECT_TRUE(std::filesystem::is_empty(s.store / "staging"));
}

TEST_F(RunTest, InterruptCancelsCleanly) {
  std::string yaml = R"(pipeline: slow
store: store
stages:
  - name: numbers
    type: testing.sequence
    params: {count: 100000, delay_ms: 2}
    batch_size: 1
  - name: total
    type: testing.collect
    inputs: [numbers]
)";
  auto s = spec(yaml);
  Store store(s.store);
  std::atomic<bool> interrupt{false};
  RunOptions o;
  o.progress = ProgressMode::None;
  o.interrupt = &interrupt;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    interrupt = true;
  });
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_pipeline(s, store, o);
  stopper.join();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  EXPECT_EQ(r.status, "cancelled");
  EXPECT_NE(r.error.find("interrupted"), std::string::npos);
  EXPECT_EQ(store.run(r.run_id)->status, "cancelled");
  EXPECT_TRUE(std::filesystem::is_empty(s.store / "staging"));
}

}  // namespace
}  // namespace lvmflow::testing

namespace lvmflow::testing {
namespace {

TEST_F(RunTest, GcRemovesOnlyWhatNoCacheEntryPointsTo) {
  auto s = spec(kChain);
  auto r = run(s);
  ASSERT_EQ(r.status, "succeeded");
  Store store(s.store);
  auto orphan = s.store / "artifacts" / "ab" / "abandoned";
  std::filesystem::create_directories(orphan);
  std::ofstream(orphan / "batches.bin") << "partial";
  auto dead_staging = s.store / "staging" / "0123456789abcdef-999999999-1";
  std::filesystem::create_directories(dead_staging);
  auto gc = store.gc();
  EXPECT_EQ(gc.removed, 2);
  EXPECT_GT(gc.bytes, 0);
  EXPECT_FALSE(std::filesystem::exists(orphan));
  EXPECT_FALSE(std::filesystem::exists(dead_staging));
  for (const auto& p : r.plan.stages) EXPECT_TRUE(store.find_cache(p.key)) << p.spec->name;
  auto again = run(s);
  for (const auto& [stage, action] : actions(s, again.run_id)) EXPECT_EQ(action, "cached") << stage;
}

}  // namespace
}  // namespace lvmflow::testing
