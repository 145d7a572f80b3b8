// Store integrity: every artifact file is checksummed at commit and checked before use, a
// damaged output is recomputed (never replayed), --force replaces the stored folder, the store
// can be moved or copied, gc keeps what is committed or still wanted, and older stores migrate.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <thread>

#include "pipeline/error.hpp"
#include "tests/pipeline/pipeline_fixture.hpp"

namespace lvmflow::testing {
namespace {

namespace fs = std::filesystem;

const char* kChain = R"(pipeline: increments
store: store
stages:
  - name: numbers
    type: testing.sequence
    params: {count: 100}
    batch_size: 5
  - name: plus
    type: testing.map
    inputs: [numbers]
    params: {op: add, operand: 1}
  - name: total
    type: testing.collect
    inputs: [plus]
)";
// sum over i<100 of i + 1, and of i + 2
const char* kTotal = "plus 5050 100\n";
const char* kTotalPlus2 = "plus 5150 100\n";

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

// Flips one byte in the middle of a file, keeping its size.
void flip_byte(const fs::path& p) {
  std::string bytes = read_file(p);
  ASSERT_FALSE(bytes.empty()) << p;
  bytes[bytes.size() / 2] ^= 0x5a;
  write_file(p, bytes);
}

class StoreIntegrityTest : public PipelineFixture {
 protected:
  // A run that keeps its log lines (damage is reported there).
  RunResult run_logged(const PipelineSpec& s, PlanOptions plan = {}) {
    Store store(s.store);
    RunOptions o;
    o.plan = std::move(plan);
    o.progress = ProgressMode::Lines;
    o.out = &log;
    return run_pipeline(s, store, o);
  }
  fs::path artifact(const RunResult& r, const std::string& stage) {
    return Store(dir / "store").artifact_path(r.plan.stages[r.plan.index_of(stage)].key);
  }
  std::ostringstream log;
};

TEST_F(StoreIntegrityTest, EveryFileIsChecksummedAtCommit) {
  auto s = spec(kChain);
  auto r = run(s);
  ASSERT_EQ(r.status, "succeeded") << r.error;
  Store store(s.store);
  const auto& key = r.plan.stages.back().key;
  auto files = store.artifact_files(key);
  ASSERT_EQ(files.size(), 3u);   // batches.bin, key.json (the key's parts) and summary.txt
  EXPECT_EQ(files[0].path, "batches.bin");
  EXPECT_EQ(files[1].path, "key.json");
  EXPECT_EQ(files[2].path, "summary.txt");
  EXPECT_EQ(files[2].size, static_cast<std::int64_t>(std::string(kTotal).size()));
  EXPECT_EQ(files[2].xxh3, xxh3_file(store.artifact_path(key) / "summary.txt"));
  EXPECT_EQ(files[2].xxh3.size(), 32u);
  EXPECT_TRUE(store.verify_artifact(key, VerifyDepth::Full).ok());
}

TEST_F(StoreIntegrityTest, DamagedOutputIsRecomputedNotReplayed) {
  auto s = spec(kChain);
  auto first = run(s);
  ASSERT_EQ(first.status, "succeeded") << first.error;
  fs::path total = artifact(first, "total");
  flip_byte(total / "summary.txt");

  auto second = run_logged(s);
  ASSERT_EQ(second.status, "succeeded") << second.error;
  auto a = actions(s, second.run_id);
  EXPECT_EQ(a["total"], "run");
  EXPECT_EQ(a["plus"], "replay");
  EXPECT_NE(log.str().find("[total] stored output is damaged (summary.txt: content differs"), std::string::npos)
      << log.str();
  EXPECT_EQ(read_file(total / "summary.txt"), kTotal);
  Store store(s.store);
  EXPECT_TRUE(store.verify_artifact(second.plan.stages.back().key, VerifyDepth::Full).ok());
}

TEST_F(StoreIntegrityTest, ZeroByteBatchesFileIsNotReplayedAsAnEmptyStream) {
  auto s = spec(kChain);
  auto first = run(s);
  ASSERT_EQ(first.status, "succeeded") << first.error;
  write_file(artifact(first, "numbers") / "batches.bin", "");   // : > batches.bin

  auto changed = spec(kChain, {"plus.operand=2"});
  auto second = run_logged(changed);
  ASSERT_EQ(second.status, "succeeded") << second.error;
  auto a = actions(changed, second.run_id);
  EXPECT_EQ(a["numbers"], "run");
  EXPECT_NE(log.str().find("batches.bin: 0 bytes"), std::string::npos) << log.str();
  EXPECT_EQ(summary(changed, second.plan.stages.back().key), kTotalPlus2);
}

TEST_F(StoreIntegrityTest, ForceReplacesTheStoredArtifact) {
  auto s = spec(kChain);
  auto first = run(s);
  ASSERT_EQ(first.status, "succeeded") << first.error;
  fs::path total = artifact(first, "total");
  write_file(total / "summary.txt", "plus 1 1\n");   // damaged, different size
  PlanOptions force;
  force.force = {"total"};
  auto forced = run(s, force);
  ASSERT_EQ(forced.status, "succeeded") << forced.error;
  EXPECT_EQ(read_file(total / "summary.txt"), kTotal);
  Store store(s.store);
  EXPECT_TRUE(store.verify_artifact(forced.plan.stages.back().key, VerifyDepth::Full).ok());
  EXPECT_EQ(store.find_cache(forced.plan.stages.back().key)->run_id, forced.run_id);
  EXPECT_TRUE(fs::is_empty(s.store / "staging"));   // the replaced folder is gone
}

TEST_F(StoreIntegrityTest, MovedStoreStillHitsItsCache) {
  auto s = spec(kChain);
  ASSERT_EQ(run(s).status, "succeeded");
  fs::rename(dir / "store", dir / "moved");
  auto moved = load_spec(dir / "pipeline.yaml", stage_registry(), {}, (dir / "moved").string());
  auto again = run(moved);
  ASSERT_EQ(again.status, "succeeded") << again.error;
  for (const auto& [stage, action] : actions(moved, again.run_id)) EXPECT_EQ(action, "cached") << stage;
}

TEST_F(StoreIntegrityTest, GcOnACopyOrThroughASymlinkRemovesNothingLive) {
  auto s = spec(kChain);
  auto r = run(s);
  ASSERT_EQ(r.status, "succeeded");
  fs::copy(dir / "store", dir / "copy", fs::copy_options::recursive);
  fs::create_directory_symlink(dir / "store", dir / "link");
  for (const char* name : {"copy", "link"}) {
    Store store(dir / name);
    EXPECT_EQ(store.gc().removed, 0) << name;
    for (const auto& p : r.plan.stages) {
      EXPECT_TRUE(store.find_cache(p.key)) << name << " " << p.spec->name;
      EXPECT_TRUE(store.verify_artifact(p.key, VerifyDepth::Full).ok()) << name << " " << p.spec->name;
    }
  }
}

TEST_F(StoreIntegrityTest, GcKeepsResumeStateOfLiveAndInterruptedWork) {
  Store store(dir / "store");
  auto held = store.claim_resume_folder("live");
  ASSERT_TRUE(held->shared());
  write_file(held->path() / "state.pt", "live state");
  {
    auto interrupted = store.claim_resume_folder("interrupted");
    write_file(interrupted->path() / "state.pt", "state of a killed run");
  }   // the run ended without finishing: its state stays for a re-run
  fs::path dead_private = dir / "store" / "staging" / "resume-other.999999999.1";
  fs::create_directories(dead_private);
  fs::path live_staging = store.make_staging_dir("0123456789abcdef0123");   // this process's

  GcResult gc = store.gc();
  EXPECT_TRUE(fs::exists(held->path() / "state.pt"));
  EXPECT_TRUE(fs::exists(dir / "store" / "staging" / "resume-interrupted" / "state.pt"));
  EXPECT_FALSE(fs::exists(dead_private));
  EXPECT_TRUE(fs::exists(live_staging));
  EXPECT_EQ(gc.removed, 1);
  EXPECT_EQ(gc.kept_resume, 1);

  GcResult all = store.gc(true);
  EXPECT_FALSE(fs::exists(dir / "store" / "staging" / "resume-interrupted"));
  EXPECT_TRUE(fs::exists(held->path() / "state.pt")) << "a live run's state is never removed";
  EXPECT_EQ(all.removed, 1);
}

TEST_F(StoreIntegrityTest, TwoRunsDoingTheSameWorkGetSeparateResumeFolders) {
  Store store(dir / "store");
  auto first = store.claim_resume_folder("train-abc");
  auto second = store.claim_resume_folder("train-abc");
  EXPECT_TRUE(first->shared());
  EXPECT_FALSE(second->shared());
  EXPECT_NE(first->path(), second->path());
  fs::path private_path = second->path();
  second.reset();
  EXPECT_FALSE(fs::exists(private_path));
  first.reset();
  auto third = store.claim_resume_folder("train-abc");
  EXPECT_TRUE(third->shared()) << "released when its run let go";
  EXPECT_THROW(store.claim_resume_folder("../escape"), Error);
}

// A store made by lvmflow before checksums existed (schema 1: absolute artifact paths, no
// artifact_files) is upgraded on open and keeps all its cache hits.
TEST_F(StoreIntegrityTest, Version1StoreIsMigrated) {
  auto s = spec(kChain);
  auto r = run(s);
  ASSERT_EQ(r.status, "succeeded");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((s.store / "lvmflow.db").c_str(), &db), SQLITE_OK);
    std::string sql = "UPDATE meta SET value='1' WHERE key='schema_version'; DROP TABLE artifact_files;"
                      "UPDATE cache_entries SET artifact='" + (s.store / "artifacts").string() +
                      "/' || substr(key,1,2) || '/' || key;";
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  fs::rename(dir / "store", dir / "moved");   // absolute paths now point nowhere
  auto moved = load_spec(dir / "pipeline.yaml", stage_registry(), {}, (dir / "moved").string());
  auto again = run(moved);
  ASSERT_EQ(again.status, "succeeded") << again.error;
  for (const auto& [stage, action] : actions(moved, again.run_id)) EXPECT_EQ(action, "cached") << stage;
  Store store(moved.store);
  for (const auto& p : r.plan.stages) {
    auto status = store.verify_artifact(p.key, VerifyDepth::Full);
    EXPECT_TRUE(status.recorded && status.ok()) << p.spec->name;
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((moved.store / "lvmflow.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT (SELECT value FROM meta WHERE key='schema_version'), MIN(artifact) FROM cache_entries", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), std::to_string(kStoreSchemaVersion).c_str());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 1))).rfind("artifacts/", 0), 0u);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

// Many processes opening a store that does not exist yet: none may fail.
TEST_F(StoreIntegrityTest, ProcessesCreatingOneNewStoreAtOnceAllSucceed) {
  auto s = spec(kChain);
  for (int round = 0; round < 8; ++round) {
    fs::path store_dir = dir / ("new-" + std::to_string(round));
    std::vector<pid_t> children;
    // All start at the same instant (the steady clock is shared across fork).
    const auto start = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
    for (int i = 0; i < 6; ++i) {
      pid_t pid = ::fork();
      if (pid == 0) {
        int rc = 0;
        try {
          std::this_thread::sleep_until(start);
          Store store(store_dir);
          RunOptions o;
          o.progress = ProgressMode::None;
          if (run_pipeline(s, store, o).status != "succeeded") rc = 1;
        } catch (const std::exception& e) {
          std::fprintf(stderr, "%s\n", e.what());
          rc = 1;
        }
        ::_exit(rc);
      }
      children.push_back(pid);
    }
    for (pid_t pid : children) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "round " << round;
    }
    EXPECT_EQ(Store(store_dir).runs(100).size(), 6u);
  }
}

}  // namespace
}  // namespace lvmflow::testing
