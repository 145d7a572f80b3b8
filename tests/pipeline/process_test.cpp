// Whole-process behaviour through the real `lvmflow` binary: SIGKILL at any moment then
// re-run, two runs on one store at the same time, and the CLI's error lines and exit codes.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tests/pipeline/pipeline_fixture.hpp"

namespace lvmflow::testing {
namespace {

const char* kSlow = R"(pipeline: resumable
store: store
stages:
  - name: numbers
    type: testing.sequence
    params: {count: 120, delay_ms: 10}
    batch_size: 4
  - name: squares
    type: testing.map
    inputs: [numbers]
    concurrency: 2
    params: {op: square, delay_ms: 2}
  - name: firstsum
    type: testing.collect
    inputs: [squares]
    params: {delay_ms: 30}
  - name: plus
    type: testing.map
    inputs: [squares]
    params: {op: add, operand: 7, delay_ms: 1}
  - name: total
    type: testing.collect
    inputs: [plus, numbers]
)";

class ProcessTest : public PipelineFixture {
 protected:
  pid_t start_run(const std::filesystem::path& file) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::execl(LVMFLOW_BINARY, LVMFLOW_BINARY, "run", file.c_str(), "--quiet", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    return pid;
  }
  // Waits until process `pid` has recorded its run (program start-up, with libtorch and
  // FAISS to load, takes a while), so kill delays are measured from the run's start.
  bool wait_until_running(const std::filesystem::path& store_dir, pid_t pid) {
    for (int i = 0; i < 1000; ++i) {
      if (std::filesystem::exists(store_dir / "lvmflow.db")) {
        Store store(store_dir);
        for (const auto& r : store.runs(50))
          if (r.pid == pid && r.status == "running") return true;
      }
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  int wait_exit(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string final_output(const std::filesystem::path& store_dir, const PipelineSpec& s) {
    Store store(store_dir);
    PlanOptions o;
    auto plan = make_plan(s, store, o);
    std::ifstream in(store.artifact_path(plan.stages.back().key) / "summary.txt");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
};

TEST_F(ProcessTest, SigkillAtAnyMomentThenRerunGivesTheSameOutputs) {
  auto file = write("pipeline.yaml", kSlow);
  auto s = load_spec(file, stage_registry());
  // Reference: an uninterrupted run in its own store.
  auto ref = load_spec(file, stage_registry(), {}, (dir / "reference").string());
  ASSERT_EQ(shell(std::string(LVMFLOW_BINARY) + " run " + file.string() + " --quiet --store " + (dir / "reference").string()).first, 0);
  std::string expected = final_output(dir / "reference", ref);
  ASSERT_FALSE(expected.empty());

  // Kill runs at increasing moments; each re-run resumes from what was committed.
  int killed = 0;
  for (int delay_ms : {0, 40, 100, 180, 280, 400}) {
    pid_t pid = start_run(file);
    if (!wait_until_running(s.store, pid)) continue;   // it already finished or failed
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    if (::kill(pid, SIGKILL) == 0) ++killed;
    wait_exit(pid);
  }
  ASSERT_GT(killed, 0);
  ASSERT_EQ(shell(std::string(LVMFLOW_BINARY) + " run " + file.string() + " --quiet").first, 0);
  EXPECT_EQ(final_output(s.store, s), expected);

  auto [rc, runs] = shell(std::string(LVMFLOW_BINARY) + " runs --store " + s.store.string());
  EXPECT_EQ(rc, 0);
  EXPECT_NE(runs.find("interrupted"), std::string::npos) << runs;
  EXPECT_NE(runs.find("succeeded"), std::string::npos) << runs;
  // And the store is sound.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((s.store / "lvmflow.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_F(ProcessTest, TwoRunsOnOneStoreAtTheSameTimeBothFinish) {
  auto file = write("pipeline.yaml", kSlow);
  auto s = load_spec(file, stage_registry());
  pid_t a = start_run(file);
  pid_t b = start_run(file);
  EXPECT_EQ(wait_exit(a), 0);
  EXPECT_EQ(wait_exit(b), 0);
  // sum of (i^2 + 7) and of i for i < 120
  EXPECT_EQ(final_output(s.store, s), "plus 569660 120\nnumbers 7140 120\n");
}

TEST_F(ProcessTest, CliErrorsAreOneLineWithNonZeroExit) {
  auto file = write("bad.yaml", "pipeline: x\nstages:\n  - name: a\n    type: testing.sequence\n    params: {count: many}\n");
  auto [rc, out] = shell(std::string(LVMFLOW_BINARY) + " run " + file.string());
  EXPECT_EQ(rc, 2);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(out.find("bad.yaml:5:14"), std::string::npos) << out;
  auto [rc2, out2] = shell(std::string(LVMFLOW_BINARY) + " run /nonexistent.yaml");
  EXPECT_EQ(rc2, 2);
  EXPECT_NE(out2.find("cannot read pipeline file"), std::string::npos);
  auto [rc3, out3] = shell(std::string(LVMFLOW_BINARY) + " frobnicate");
  EXPECT_EQ(rc3, 2);
  auto [rc4, out4] = shell(std::string(LVMFLOW_BINARY) + " profile --help");
  EXPECT_EQ(rc4, 0);
  EXPECT_NE(out4.find("usage: lvmflow profile"), std::string::npos);
  auto [rc5, out5] = shell(std::string(LVMFLOW_BINARY) + " stages testing --json");
  EXPECT_EQ(rc5, 0);
  EXPECT_NE(out5.find("\"type\":\"testing.sequence\""), std::string::npos);
}

}  // namespace
}  // namespace lvmflow::testing
