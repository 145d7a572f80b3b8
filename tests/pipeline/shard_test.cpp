// Sharded runs through the real `lvmflow` binary on the bundled sample dump: N shards + merge
// give the unsharded run's cache keys and byte-identical artifacts; an incomplete shard is
// named, and re-running it redoes only that shard.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"
#include "pipeline/shard.hpp"
#include "tests/pipeline/pipeline_fixture.hpp"

namespace lvmflow::testing {
namespace {

namespace fs = std::filesystem;

// Every file of an artifact folder, by relative path.
std::map<std::string, std::string> artifact_files(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = read_file_bytes(e.path());
  return files;
}

class ShardTest : public PipelineFixture {
 protected:
  void SetUp() override {
    PipelineFixture::SetUp();
    file = write("pipeline.yaml", sample_rebuild_yaml("sharded"));
  }
  std::pair<int, std::string> lvmflow(const std::string& args, const fs::path& store) {
    return shell(std::string(LVMFLOW_BINARY) + " " + args + " --quiet --store " + store.string());
  }
  void run_shard(const fs::path& store, std::size_t i, std::size_t n) {
    auto [rc, out] = lvmflow("run " + file.string() + " --shard " + std::to_string(i) + "/" + std::to_string(n), store);
    ASSERT_EQ(rc, 0) << out;
  }
  // Keys and artifact files of every stage of the unsharded plan, from `store`.
  std::map<std::string, std::pair<std::string, std::map<std::string, std::string>>> outputs(const fs::path& store_dir) {
    auto s = load_spec(file, stage_registry(), {}, store_dir.string());
    Store store(store_dir);
    std::map<std::string, std::pair<std::string, std::map<std::string, std::string>>> out;
    for (const auto& p : make_plan(s, store, {}).stages) {
      EXPECT_TRUE(store.find_cache(p.key)) << p.spec->name << " not committed in " << store_dir;
      out[p.spec->name] = {p.key, artifact_files(store.artifact_path(p.key))};
    }
    return out;
  }
  std::size_t runs_in(const fs::path& store_dir) {
    Store store(store_dir);
    return store.runs(1000).size();
  }
  // The encode stage's metric `name` in the newest run of `store_dir`.
  double encode_metric(const fs::path& store_dir, const std::string& name) {
    Store store(store_dir);
    for (const auto& m : store.metrics(store.latest_run_id()))
      if (m.stage == "vectors" && m.name == name) return m.value;
    return -1;
  }

  fs::path file;
};

TEST_F(ShardTest, ShardsPlusMergeEqualTheUnshardedRun) {
  auto [rc, out] = lvmflow("run " + file.string(), dir / "reference");
  ASSERT_EQ(rc, 0) << out;
  const auto reference = outputs(dir / "reference");
  const double chunks = encode_metric(dir / "reference", "cache_misses");
  ASSERT_GT(chunks, 20);
  ASSERT_GT(reference.at("vectors").second.at("vectors.npy").size(), 1000u);

  for (std::size_t n : {1, 3, 4}) {
    SCOPED_TRACE("N = " + std::to_string(n));
    const fs::path store = dir / ("sharded-" + std::to_string(n));
    double shard_chunks = 0;
    for (std::size_t i = 0; i < n; ++i) {
      run_shard(store, i, n);
      const double own = encode_metric(shard_store_dir(store, {i, n}), "cache_misses");
      if (n > 1) EXPECT_LT(own, chunks) << "shard " << i << " encoded every chunk";
      shard_chunks += own;
    }
    EXPECT_EQ(shard_chunks, chunks);   // each chunk encoded by exactly one shard
    std::tie(rc, out) = lvmflow("merge " + file.string() + " --shards " + std::to_string(n), store);
    ASSERT_EQ(rc, 0) << out;
    if (n == 1) {
      // One shard holds the prefix under the unsharded keys: merge brings its outputs in whole
      // (hard links), so the merge's encode stage is cached and computes nothing.
      EXPECT_EQ(encode_metric(store, "cache_misses"), -1);
    } else {
      EXPECT_EQ(encode_metric(store, "cache_misses"), 0);   // the merge encoded nothing
      EXPECT_EQ(encode_metric(store, "cache_hits"), chunks);
    }
    // The rest of the pipeline, as if nothing had been sharded.
    std::tie(rc, out) = lvmflow("run " + file.string(), store);
    ASSERT_EQ(rc, 0) << out;
    const auto merged = outputs(store);
    for (const auto& [stage, key_files] : reference) {
      EXPECT_EQ(merged.at(stage).first, key_files.first) << stage << ": cache key differs";
      EXPECT_TRUE(merged.at(stage).second == key_files.second) << stage << ": artifacts differ";
    }
    // Every shard's run is in the main store with its spans, for profile and report.
    Store main_store(store);
    std::size_t shard_runs = 0;
    for (const auto& r : main_store.runs(100)) {
      if (r.args.find("[shard ") == std::string::npos) continue;
      ++shard_runs;
      EXPECT_NE(r.args.find(" run 1 on "), std::string::npos) << r.args;
      EXPECT_FALSE(main_store.spans(r.id).empty()) << r.args;
    }
    EXPECT_EQ(shard_runs, n);
  }
}

TEST_F(ShardTest, MergeNamesIncompleteShardsAndARerunRedoesOnlyThatShard) {
  const fs::path store = dir / "store";
  run_shard(store, 0, 3);
  run_shard(store, 2, 3);
  // Shard 1 killed as soon as it has started its run.
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(LVMFLOW_BINARY, LVMFLOW_BINARY, "run", file.c_str(), "--shard", "1/3", "--quiet", "--store",
            store.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const fs::path shard1 = shard_store_dir(store, {1, 3});
  for (int i = 0; i < 2000 && !fs::exists(shard1 / "lvmflow.db"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);

  auto [rc, out] = lvmflow("merge " + file.string() + " --shards 3", store);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("shard 1/3 incomplete"), std::string::npos) << out;
  EXPECT_EQ(out.find("shard 0/3 incomplete"), std::string::npos) << out;
  EXPECT_NE(out.find("--shard 1/3"), std::string::npos) << out;   // how to fix it

  const std::size_t runs0 = runs_in(shard_store_dir(store, {0, 3})), runs2 = runs_in(shard_store_dir(store, {2, 3}));
  run_shard(store, 1, 3);
  std::tie(rc, out) = lvmflow("merge " + file.string() + " --shards 3", store);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(runs_in(shard_store_dir(store, {0, 3})), runs0);
  EXPECT_EQ(runs_in(shard_store_dir(store, {2, 3})), runs2);
  // Running a finished shard again computes nothing.
  run_shard(store, 0, 3);
  Store shard0(shard_store_dir(store, {0, 3}));
  for (const auto& r : shard0.stage_runs(shard0.latest_run_id()))
    EXPECT_NE(r.action, "run") << r.stage << " ran again in a finished shard";
}

TEST_F(ShardTest, SubmitDryRunPrintsTheChainedScripts) {
  auto [rc, out] = shell(std::string(LVMFLOW_BINARY) + " submit " + file.string() +
                         " --shards 3 --dry-run --set vectors.threads=2 --rest-slurm-args --ntasks=4");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("#SBATCH --array=0-2"), std::string::npos) << out;
  EXPECT_NE(out.find("--shard \"${SLURM_ARRAY_TASK_ID}/3\""), std::string::npos) << out;
  EXPECT_NE(out.find("merge '" + file.string() + "'"), std::string::npos) << out;
  EXPECT_NE(out.find("--shards 3"), std::string::npos) << out;
  EXPECT_NE(out.find("'--set=vectors.threads=2'"), std::string::npos) << out;
  EXPECT_NE(out.find("--ntasks=4 --dependency=afterok:<merge> rest.sbatch"), std::string::npos) << out;
  EXPECT_NE(out.find("exec srun "), std::string::npos) << out;   // the rest job's ranks
  std::tie(rc, out) = shell(std::string(LVMFLOW_BINARY) + " submit " + file.string() + " --shards 0 --dry-run");
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("--shards"), std::string::npos) << out;
}

TEST(ShardSpec, ParsesAndRejects) {
  EXPECT_EQ(parse_shard("2/5", "--shard").index, 2u);
  EXPECT_EQ(parse_shard("2/5", "--shard").count, 5u);
  for (const char* bad : {"5/5", "1", "a/3", "-1/3", "1/0", "1/3x"}) EXPECT_THROW(parse_shard(bad, "--shard"), Error) << bad;
  EXPECT_THROW(parse_shard_count("0", "--shards"), Error);
  // Rows go by article: every section of one article lands in the same shard.
  Batch b;
  b.ids = {"12#0", "12#1", "13#0"};
  b.ints["article_id"] = {12, 12, 13};
  EXPECT_EQ(shard_of_row(b, 0, 7), shard_of_row(b, 1, 7));
  EXPECT_EQ(shard_of_row(b, 0, 7), fnv1a64("12") % 7);
}

}  // namespace
}  // namespace lvmflow::testing
