// Profile and compare: exact numbers on hand-written spans, and timings of real runs of the
// testing.* stages with known delays (a sleep lasts at least its delay, so lower bounds are
// exact; upper bounds leave room for a loaded machine but not for a wrong unit or formula).
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "pipeline/error.hpp"
#include "pipeline/profile.hpp"
#include "stages/common/json.hpp"
#include "tests/pipeline/pipeline_fixture.hpp"

namespace lvmflow::testing {
namespace {

TEST(Percentiles, NearestRankOnKnownValues) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);   // order must not matter
  Percentiles p = percentiles(v);
  EXPECT_EQ(p.p50, 50);
  EXPECT_EQ(p.p95, 95);
  EXPECT_EQ(p.p99, 99);
  EXPECT_EQ(p.max, 100);
  Percentiles one = percentiles({7.5});
  EXPECT_EQ(one.p50, 7.5);
  EXPECT_EQ(one.p99, 7.5);
  Percentiles few = percentiles({1, 2, 3});   // ranks ceil(1.5)=2, ceil(2.85)=3
  EXPECT_EQ(few.p50, 2);
  EXPECT_EQ(few.p95, 3);
  Percentiles none = percentiles({});
  EXPECT_EQ(none.p50, 0);
  EXPECT_EQ(none.max, 0);
}

TEST(UnionLength, OverlappingTouchingAndDisjoint) {
  EXPECT_DOUBLE_EQ(union_length({}), 0);
  EXPECT_DOUBLE_EQ(union_length({{0, 10}, {5, 15}}), 15);
  EXPECT_DOUBLE_EQ(union_length({{0, 10}, {10, 20}}), 20);
  EXPECT_DOUBLE_EQ(union_length({{30, 40}, {0, 10}, {2, 3}}), 20);
  EXPECT_DOUBLE_EQ(union_length({{0, 100}, {10, 20}, {50, 60}}), 100);
}

// A store holding one run with spans written by hand, so every number is known exactly.
class SyntheticProfile : public PipelineFixture {
 protected:
  static constexpr std::int64_t kMs = 1000000;
  std::int64_t add_stage(Store& store, std::int64_t run, const std::string& name, const std::string& type,
                         const std::string& action, std::int64_t finished_ns) {
    auto id = store.begin_stage_run(run, name, type, "key-" + name, action);
    store.finish_stage_run(id, action == "skipped" ? "skipped" : "done", 0, finished_ns, 0, 0, 0, "");
    return id;
  }
  Span span(const std::string& stage, std::uint64_t seq, std::int64_t start_ms, std::int64_t end_ms,
            std::int64_t queued_ms, std::int64_t items) {
    return {stage, seq, start_ms * kMs, end_ms * kMs, queued_ms * kMs, items, 1};
  }
};

TEST_F(SyntheticProfile, NumbersOrderAndBottleneck) {
  Store store(dir / "store");
  auto run = store.begin_run("synthetic", "p.yaml", "");
  // Rows in an order that is not the pipeline's: the profile must put inputs first.
  add_stage(store, run, "sink", "testing.collect", "run", 200 * kMs);
  add_stage(store, run, "old", "testing.map", "cached", 0);
  add_stage(store, run, "wide", "testing.map", "run", 0);
  add_stage(store, run, "src", "testing.sequence", "run", 0);
  add_stage(store, run, "narrow", "testing.map", "run", 0);
  // Edges in plan order, as the executor writes them.
  store.add_stage_edges(run, {{"wide", "src", 0}, {"old", "src", 0}, {"narrow", "wide", 0}, {"sink", "narrow", 0}});
  store.add_spans(run, {
      span("src", 0, 0, 1, 0, 10), span("src", 1, 1, 2, 0, 10), span("src", 2, 2, 3, 0, 10), span("src", 3, 3, 4, 0, 10),
      // wide: 4 batches of 40 ms, all at once: busy 160 ms, active 40 ms.
      span("wide", 0, 4, 44, 3, 10), span("wide", 1, 4, 44, 2, 10), span("wide", 2, 4, 44, 1, 10), span("wide", 3, 4, 44, 0, 10),
      // narrow: 4 batches of 20 ms, one after another: busy = active = 80 ms; waits 0, 20, 40, 60 ms.
      span("narrow", 0, 44, 64, 0, 10), span("narrow", 1, 64, 84, 20, 10), span("narrow", 2, 84, 104, 40, 10),
      span("narrow", 3, 104, 124, 60, 10),
      span("sink", 0, 130, 190, 0, 40),
  });
  store.finish_run(run, "succeeded", "");

  RunProfile p = profile_run(store, run);
  EXPECT_TRUE(p.has_edges);
  EXPECT_DOUBLE_EQ(p.wall_s, 0.2);   // the latest stage end (sink finished at 200 ms)
  std::vector<std::string> order;
  for (const auto& s : p.stages) order.push_back(s.stage);
  ASSERT_EQ(order.size(), 5u);
  // The plan's order, recovered from the edges, not the order of the stage_runs rows.
  EXPECT_EQ(order, (std::vector<std::string>{"src", "wide", "old", "narrow", "sink"}));

  const StageProfile& wide = *p.find("wide");
  EXPECT_EQ(wide.calls, 4);
  EXPECT_EQ(wide.items, 40);
  EXPECT_DOUBLE_EQ(wide.busy_s, 0.16);
  EXPECT_DOUBLE_EQ(wide.active_s, 0.04);
  EXPECT_DOUBLE_EQ(wide.wall_s, 0.04);
  EXPECT_EQ(wide.max_parallel, 4);
  EXPECT_DOUBLE_EQ(wide.parallelism, 4);
  EXPECT_DOUBLE_EQ(wide.batch_ms.p50, 40);
  EXPECT_DOUBLE_EQ(wide.item_ms.p50, 4);
  EXPECT_DOUBLE_EQ(wide.items_per_s, 1000);   // 40 items over 40 ms
  EXPECT_EQ(wide.inputs, std::vector<std::string>{"src"});

  const StageProfile& narrow = *p.find("narrow");
  EXPECT_DOUBLE_EQ(narrow.busy_s, 0.08);
  EXPECT_DOUBLE_EQ(narrow.active_s, 0.08);
  EXPECT_EQ(narrow.max_parallel, 1);   // back-to-back batches do not overlap
  EXPECT_DOUBLE_EQ(narrow.queued_ms.p50, 20);
  EXPECT_DOUBLE_EQ(narrow.queued_ms.p95, 60);
  EXPECT_NEAR(narrow.queued_s, 0.12, 1e-12);
  EXPECT_DOUBLE_EQ(narrow.share, 0.4);   // 80 of 200 ms
  EXPECT_DOUBLE_EQ(narrow.first_start_s, 0.044);

  // wide summed more batch time (160 ms) but held the run's clock for 40 ms; narrow for 80.
  EXPECT_TRUE(narrow.bottleneck);
  EXPECT_FALSE(wide.bottleneck);
  EXPECT_EQ(p.bottleneck(), p.find("narrow"));

  const StageProfile& old = *p.find("old");
  EXPECT_EQ(old.action, "cached");
  EXPECT_EQ(old.calls, 0);
  EXPECT_EQ(old.active_s, 0);
  EXPECT_FALSE(old.bottleneck);
}

TEST_F(SyntheticProfile, ReplayIsNeverTheBottleneckAndOldRunsHaveNoEdges) {
  Store store(dir / "store");
  auto run = store.begin_run("synthetic", "p.yaml", "");
  add_stage(store, run, "stored", "testing.sequence", "replay", 0);
  add_stage(store, run, "work", "testing.map", "run", 0);
  store.add_spans(run, {span("stored", 0, 0, 90, 0, 5), span("work", 0, 90, 100, 0, 5)});
  RunProfile p = profile_run(store, run);
  EXPECT_FALSE(p.has_edges);
  EXPECT_EQ(p.stages.front().stage, "stored");   // no edges: the rows' order
  EXPECT_EQ(p.bottleneck(), p.find("work"));
  EXPECT_THROW(profile_run(store, run + 100), Error);
}

TEST_F(SyntheticProfile, CompareMatchesStagesAndMarksOneSided) {
  Store store(dir / "store");
  auto a = store.begin_run("p", "p.yaml", "");
  add_stage(store, a, "src", "testing.sequence", "run", 0);
  add_stage(store, a, "gone", "testing.map", "run", 0);
  add_stage(store, a, "work", "testing.map", "run", 0);
  store.add_spans(a, {span("src", 0, 0, 2, 0, 10), span("gone", 0, 2, 3, 0, 10), span("work", 0, 2, 12, 0, 10)});
  auto b = store.begin_run("p", "p.yaml", "");
  add_stage(store, b, "new", "testing.sequence", "run", 0);
  add_stage(store, b, "src", "testing.sequence", "replay", 0);
  add_stage(store, b, "work", "testing.map", "run", 0);
  store.add_spans(b, {span("new", 0, 0, 1, 0, 1), span("src", 0, 0, 1, 0, 10), span("work", 0, 1, 31, 0, 10)});

  RunComparison c = compare_runs(store, a, b);
  std::vector<std::string> order;
  for (const auto& s : c.stages) order.push_back(s.stage);
  EXPECT_EQ(order, (std::vector<std::string>{"new", "src", "gone", "work"}));
  const auto& fields = profile_fields();
  auto field = [&](const char* name) {
    for (std::size_t i = 0; i < fields.size(); ++i)
      if (std::string(fields[i].name) == name) return i;
    ADD_FAILURE() << "no field " << name;
    return std::size_t{0};
  };
  const StageComparison& work = c.stages[3];
  ASSERT_TRUE(work.a && work.b);
  EXPECT_DOUBLE_EQ(work.ratios[field("batch_p50_ms")], 3.0);   // 10 ms -> 30 ms
  EXPECT_DOUBLE_EQ(work.ratios[field("items_per_s")], 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(work.ratios[field("items")], 1.0);
  EXPECT_EQ(c.stages[1].a->action, "run");
  EXPECT_EQ(c.stages[1].b->action, "replay");
  EXPECT_FALSE(c.stages[0].a);   // only in b
  EXPECT_FALSE(c.stages[2].b);   // only in a
  EXPECT_TRUE(std::isnan(c.stages[0].ratios[field("busy_s")]));
  EXPECT_DOUBLE_EQ(c.wall_ratio, 31.0 / 12.0);
}

// ------------------------------------------------------------------ real runs

// numbers (20 batches of 10) -> fast (no delay) -> slow (5 ms per batch) -> total.
std::string delay_pipeline(const std::string& slow_delay_ms, const std::string& extra = "") {
  return "pipeline: delays\nstore: store\nstages:\n"
         "  - {name: numbers, type: testing.sequence, params: {count: 200}, batch_size: 10}\n"
         "  - {name: fast, type: testing.map, inputs: [numbers], params: {op: add, operand: 1}}\n"
         "  - {name: slow, type: testing.map, inputs: [fast], params: {op: square, delay_ms: " + slow_delay_ms + "}}\n"
         "  - {name: total, type: testing.collect, inputs: [slow]}\n" + extra;
}

class ProfileRun : public PipelineFixture {};

TEST_F(ProfileRun, KnownDelaysGiveKnownLatenciesQueueingAndBottleneck) {
  auto s = spec(delay_pipeline("5"));
  RunResult r = run(s);
  ASSERT_EQ(r.status, "succeeded") << r.error;
  Store store(s.store);
  RunProfile p = profile_run(store, r.run_id);
  const StageProfile& slow = *p.find("slow");
  const StageProfile& fast = *p.find("fast");
  EXPECT_EQ(slow.calls, 20);
  EXPECT_EQ(slow.items, 200);
  // A 5 ms sleep takes at least 5 ms; a wrong unit (s, us) or formula would be off by 1000x.
  EXPECT_GE(slow.batch_ms.p50, 5.0);
  EXPECT_LT(slow.batch_ms.p50, 9.0);   // room for a loaded machine's late wake-ups
  EXPECT_GE(slow.batch_ms.p99, slow.batch_ms.p95);
  EXPECT_GE(slow.batch_ms.p95, slow.batch_ms.p50);
  EXPECT_GE(slow.item_ms.p50, 0.5);   // 10 items per batch
  EXPECT_LT(slow.item_ms.p50, 0.9);
  EXPECT_GE(slow.busy_s, 0.1);        // 20 x 5 ms
  EXPECT_LE(slow.items_per_s, 2000.0 * 1.0001);   // at most 10 items per 5 ms
  EXPECT_GT(slow.items_per_s, 1000.0);
  EXPECT_LT(fast.batch_ms.p50, 1.0);
  EXPECT_TRUE(slow.bottleneck);
  EXPECT_EQ(p.bottleneck()->stage, "slow");
  // Share is active time over the run's wall time (which also holds commits and hand-offs).
  EXPECT_NEAR(slow.share, slow.active_s / p.wall_s, 1e-9);
  EXPECT_GT(slow.share, 2 * fast.share);
  EXPECT_LE(slow.share, 1.0);
  // Fast hands batches to slow far quicker than slow takes them: they wait in slow's queue
  // (up to max_in_flight = 4 of them, so about 1.5 batch times on the median), not in fast's.
  EXPECT_GT(slow.queued_ms.p50, 2.5);
  EXPECT_LT(fast.queued_ms.p50, slow.queued_ms.p50 / 2);
  EXPECT_GT(slow.queued_s, 0.05);
  // The source has no input queue; the barrier ran once over all 200 rows.
  EXPECT_EQ(p.find("numbers")->queued_s, 0);
  EXPECT_EQ(p.find("total")->calls, 1);
  EXPECT_EQ(p.find("total")->items, 200);
  EXPECT_GE(p.find("total")->first_start_s, slow.first_start_s + slow.wall_s - 1e-9);
  EXPECT_EQ(slow.inputs, std::vector<std::string>{"fast"});
  EXPECT_GE(p.wall_s, slow.last_end_s);
}

TEST_F(ProfileRun, SpansCanBeSwitchedOffForOverheadMeasurements) {
  auto s = spec(delay_pipeline("0"));
  Store store(s.store);
  RunOptions o;
  o.progress = ProgressMode::None;
  o.graph.record_spans = false;
  RunResult r = run_pipeline(s, store, o);
  ASSERT_EQ(r.status, "succeeded") << r.error;
  EXPECT_TRUE(store.spans(r.run_id).empty());
  EXPECT_EQ(store.stage_runs(r.run_id).size(), 4u);   // the run itself is still recorded
}

TEST_F(ProfileRun, CompareShowsTheSlowedStageAndTheReplays) {
  // 10 vs 20 ms: long enough that a loaded machine's late wake-ups (a few ms) cannot move the
  // ratio out of its band.
  auto a = spec(delay_pipeline("10"));
  RunResult ra = run(a);
  ASSERT_EQ(ra.status, "succeeded") << ra.error;
  // B: slow takes twice as long (forced: it and what reads it re-run, the rest is replayed),
  // and B has one more stage.
  auto b = spec(delay_pipeline("20", "  - {name: extra, type: testing.map, inputs: [slow]}\n"));
  PlanOptions force;
  force.force = {"slow"};   // delay_ms is not in the cache key
  RunResult rb = run(b, force);
  ASSERT_EQ(rb.status, "succeeded") << rb.error;
  Store store(a.store);
  RunComparison c = compare_runs(store, ra.run_id, rb.run_id);
  const auto& fields = profile_fields();
  std::size_t p50 = 0;
  while (std::string(fields[p50].name) != "batch_p50_ms") ++p50;
  const StageComparison* slow = nullptr;
  for (const auto& sc : c.stages)
    if (sc.stage == "slow") slow = &sc;
  ASSERT_TRUE(slow && slow->a && slow->b);
  EXPECT_GT(slow->ratios[p50], 1.6);
  EXPECT_LT(slow->ratios[p50], 2.4);
  ASSERT_EQ(c.stages[1].stage, "fast");
  EXPECT_EQ(c.stages[1].a->action, "run");
  EXPECT_EQ(c.stages[1].b->action, "replay");    // streamed from the store to slow
  EXPECT_EQ(c.stages[0].b->action, "cached");    // fast's stored output made it unnecessary
  EXPECT_EQ(c.stages.back().stage, "extra");
  EXPECT_FALSE(c.stages.back().a);
  // B's cached stages were recorded before the ones that ran; the profile still lists them in
  // pipeline order.
  std::vector<std::string> order;
  for (const auto& st : c.b.stages) order.push_back(st.stage);
  EXPECT_EQ(order, (std::vector<std::string>{"numbers", "fast", "slow", "total", "extra"}));
}

// The commands' machine-readable output, through the real binary.
TEST_F(ProfileRun, ProfileAndCompareCommandsWriteJsonAndCsv) {
  auto s = spec(delay_pipeline("2"));
  ASSERT_EQ(run(s).status, "succeeded");
  auto s2 = spec(delay_pipeline("3"));
  PlanOptions force;
  force.force = {"slow"};
  ASSERT_EQ(run(s2, force).status, "succeeded");
  std::string bin = LVMFLOW_BINARY, store = (dir / "store").string();

  auto [rc, json_text] = shell(bin + " profile 1 --store " + store + " --json");
  ASSERT_EQ(rc, 0) << json_text;
  Json profile = Json::parse(json_text);
  EXPECT_EQ(profile.at("bottleneck").as_string(), "slow");
  const auto& stages = profile.at("stages").as_array();
  ASSERT_EQ(stages.size(), 4u);
  EXPECT_EQ(stages[2].at("stage").as_string(), "slow");
  EXPECT_GE(stages[2].at("batch_p50_ms").as_double(), 2.0);
  EXPECT_EQ(stages[2].at("calls").as_int(), 20);
  for (const auto& f : profile_fields()) EXPECT_TRUE(stages[2].find(f.name)) << f.name;

  auto [rc_csv, csv] = shell(bin + " profile 1 --store " + store + " --csv");
  ASSERT_EQ(rc_csv, 0) << csv;
  std::istringstream lines(csv);
  std::string header, line;
  std::getline(lines, header);
  int rows = 0;
  while (std::getline(lines, line)) ++rows;
  EXPECT_EQ(rows, 4);
  EXPECT_NE(header.find(",batch_p95_ms,"), std::string::npos);
  EXPECT_NE(header.find(",queued_p50_ms,"), std::string::npos);

  auto [rc_cmp, cmp_text] = shell(bin + " compare 1 2 --store " + store + " --json");
  ASSERT_EQ(rc_cmp, 0) << cmp_text;
  Json cmp = Json::parse(cmp_text);
  EXPECT_EQ(cmp.at("a").at("run").as_int(), 1);
  EXPECT_EQ(cmp.at("b").at("run").as_int(), 2);
  const Json* slow = nullptr;
  for (const auto& st : cmp.at("stages").as_array())
    if (st.at("stage").as_string() == "slow") slow = &st;
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->at("in").as_string(), "both");
  EXPECT_GT(slow->at("ratio").at("batch_p50_ms").as_double(), 1.2);   // 2 ms -> 3 ms

  auto [rc_table, table] = shell(bin + " compare 1 2 --store " + store);
  ASSERT_EQ(rc_table, 0) << table;
  EXPECT_NE(table.find("run -> replay"), std::string::npos) << table;   // fast
  EXPECT_NE(table.find("run -> cached"), std::string::npos) << table;   // numbers
  auto [rc_bad, bad] = shell(bin + " compare 1 --store " + store);
  EXPECT_EQ(rc_bad, 2);
  EXPECT_NE(bad.find("expected two runs"), std::string::npos) << bad;
}

}  // namespace
}  // namespace lvmflow::testing
