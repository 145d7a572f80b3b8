// Store integrity through the real `lvmflow` binary: `verify`, what `show` says about a run
// killed by SIGKILL or stopped by SIGTERM, a read-only store, and a disk that fills up.
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tests/pipeline/pipeline_fixture.hpp"

extern char** environ;

namespace lvmflow::testing {
namespace {

namespace fs = std::filesystem;

const std::string kBinary = LVMFLOW_BINARY;

const char* kQuick = R"(pipeline: quick
store: store
stages:
  - name: numbers
    type: testing.sequence
    params: {count: 120}
    batch_size: 4
  - name: squares
    type: testing.map
    inputs: [numbers]
    params: {op: square}
  - name: total
    type: testing.collect
    inputs: [squares]
)";
// `squares` commits at once while `ticks` goes on for minutes (until it is stopped).
const std::string kTwoSpeeds = std::string(kQuick) + R"(  - name: ticks
    type: testing.sequence
    params: {count: 100000, delay_ms: 5}
    batch_size: 1
  - name: ticks_total
    type: testing.collect
    inputs: [ticks]
)";

// The bundled sample dump -> chunks -> vectors (built-in encoder); more stages may follow.
std::string sample_vectors_yaml(const std::string& name) {
  return "pipeline: " + name + R"(
store: store
stages:
  - name: articles
    type: ingest.wikipedia
    params: {path: ")" + std::string(LVMFLOW_SOURCE_DIR) + R"(/data/sample-pages-articles.xml"}
    batch_size: 4
  - name: chunks
    type: chunk.text
    inputs: [articles]
  - name: vectors
    type: encode.gtr_t5
    inputs: [chunks]
    params: {model: ""}
)";
}

class StoreProcessTest : public PipelineFixture {
 protected:
  // Runs pipeline `s` in a child process, sends it `sig` once `key` is committed, and returns
  // its wait status (-1 if the key was never committed).
  int signal_once_committed(const PipelineSpec& s, const std::string& key, int sig) {
    pid_t pid = 0;
    std::vector<std::string> args = {kBinary, "run", s.file.string(), "--quiet"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid, kBinary.c_str(), nullptr, nullptr, argv.data(), environ) != 0) return -1;
    int status = 0;
    for (int i = 0; i < 3000; ++i) {
      if (committed(s, key)) {
        ::kill(pid, sig);
        ::waitpid(pid, &status, 0);
        return status;
      }
      if (::waitpid(pid, &status, WNOHANG) == pid) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1;
  }
  std::string plan_key(const PipelineSpec& s, const std::string& stage) {
    Store store(s.store, StoreMode::ReadOnly);
    auto plan = make_plan(s, store, {});
    return plan.stages[plan.index_of(stage)].key;
  }
  // Has the (running) store committed `key`? False while the store is still being created.
  bool committed(const PipelineSpec& s, const std::string& key) {
    try {
      return Store(s.store, StoreMode::ReadOnly).find_cache(key).has_value();
    } catch (const std::exception&) {
      return false;
    }
  }
  std::string cli(const std::string& args) { return kBinary + " " + args + " --store " + (dir / "store").string(); }
};

TEST_F(StoreProcessTest, VerifyNamesTheDamagedArtifactsAndExitsNonZero) {
  auto file = write("pipeline.yaml", kQuick);
  auto s = load_spec(file, stage_registry());
  ASSERT_EQ(shell(kBinary + " run " + file.string() + " --quiet").first, 0);
  auto [rc, out] = shell(cli("verify"));
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("verified 3 artifact(s): 0 damaged"), std::string::npos) << out;

  fs::path batches = Store(s.store).artifact_path(plan_key(s, "squares")) / "batches.bin";
  std::string bytes;
  {
    std::ifstream in(batches, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes[bytes.size() / 2] ^= 1;   // one bit, same size
  std::ofstream(batches, std::ios::binary) << bytes;

  auto [rc2, out2] = shell(cli("verify"));
  EXPECT_EQ(rc2, 1) << out2;
  EXPECT_NE(out2.find("DAMAGED   " + plan_key(s, "squares").substr(0, 12) + "  squares"), std::string::npos) << out2;
  EXPECT_NE(out2.find("batches.bin: content differs"), std::string::npos) << out2;
  EXPECT_NE(out2.find("1 damaged"), std::string::npos) << out2;
  EXPECT_EQ(shell(cli("verify total numbers")).first, 0);
  EXPECT_EQ(shell(cli("verify squares --quick")).first, 1);
  EXPECT_EQ(shell(cli("verify " + plan_key(s, "squares").substr(0, 8))).first, 1);
  auto [rc3, out3] = shell(cli("verify nosuchstage"));
  EXPECT_EQ(rc3, 2);
  EXPECT_EQ(std::count(out3.begin(), out3.end(), '\n'), 1) << out3;
}

TEST_F(StoreProcessTest, ShowOfAKilledRunListsItsCommittedStagesDone) {
  auto s = load_spec(write("pipeline.yaml", kTwoSpeeds), stage_registry());
  const std::string squares = plan_key(s, "squares");
  ASSERT_TRUE(WIFSIGNALED(signal_once_committed(s, squares, SIGKILL)));
  auto [rc, out] = shell(cli("show --json"));
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"status\":\"interrupted\""), std::string::npos) << out;
  EXPECT_NE(out.find("{\"stage\":\"squares\",\"type\":\"testing.map\",\"action\":\"run\",\"status\":\"done\",\"key\":\"" +
                     squares + "\",\"items_in\":120,\"items_out\":120"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("{\"stage\":\"ticks\",\"type\":\"testing.sequence\",\"action\":\"run\",\"status\":\"interrupted\""),
            std::string::npos)
      << out;
}

TEST_F(StoreProcessTest, SigtermCancelsTheRunAndIsNamedAsSuch) {
  auto s = load_spec(write("pipeline.yaml", kTwoSpeeds), stage_registry());
  int status = signal_once_committed(s, plan_key(s, "squares"), SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
  Store store(s.store, StoreMode::ReadOnly);
  auto run = store.run(store.latest_run_id());
  EXPECT_EQ(run->status, "cancelled");
  EXPECT_EQ(run->error, "interrupted (SIGTERM)");
  for (const auto& sr : store.stage_runs(run->id))
    EXPECT_EQ(sr.status, sr.stage.rfind("ticks", 0) == 0 ? "cancelled" : "done") << sr.stage;
}

// The issue's case end to end: a corrupted vectors.npy, then `--force vectors` restores it.
TEST_F(StoreProcessTest, ForceRepairsACorruptedVectorsFile) {
  if (!stage_registry().find("encode.gtr_t5")) GTEST_SKIP() << "the encode family is not built";
  auto file = write("pipeline.yaml", sample_vectors_yaml("vectors"));
  ASSERT_EQ(shell(kBinary + " run " + file.string() + " --quiet").first, 0);
  auto s = load_spec(file, stage_registry());
  fs::path npy = Store(s.store, StoreMode::ReadOnly).artifact_path(plan_key(s, "vectors")) / "vectors.npy";
  auto read = [&] {
    std::ifstream in(npy, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string good = read();
  std::string bad = good;
  for (std::size_t i = 0; i < 64; ++i) bad[bad.size() / 2 + i] ^= 0x40;
  std::ofstream(npy, std::ios::binary) << bad;
  ASSERT_NE(read(), good);
  auto [rc, out] = shell(kBinary + " run " + file.string() + " --quiet --force vectors");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(read(), good);
  EXPECT_EQ(shell(cli("verify vectors")).first, 0);
}

// Two identical runs at once used to share lvm.train's resume folder and fail renaming each
// other's state file; now the second trains in a private folder and both succeed.
TEST_F(StoreProcessTest, TwoIdenticalTrainingRunsAtOnceBothSucceed) {
  if (!stage_registry().find("lvm.train") || !stage_registry().find("encode.gtr_t5"))
    GTEST_SKIP() << "the lvm or encode family is not built";
  auto file = write("pipeline.yaml", sample_vectors_yaml("train_twice") + R"(  - name: windows
    type: seq.window
    inputs: [vectors]
    params: {context: 4, val_fraction: 0.15, seed: 42}
  - name: train
    type: lvm.train
    inputs: [windows]
    params: {arch: amn, hidden: 16, epochs: 3}
)");
  ASSERT_EQ(shell(kBinary + " run " + file.string() + " --quiet --until windows").first, 0);
  const std::string run = kBinary + " run " + file.string();
  auto [rc, out] = shell(run + " > " + (dir / "a.log").string() + " 2>&1 & a=$!; " + run + " > " +
                         (dir / "b.log").string() + " 2>&1 & b=$!; wait $a; ra=$?; wait $b; echo $ra $?");
  EXPECT_EQ(out, "0 0\n") << out;
  std::ifstream a(dir / "a.log"), b(dir / "b.log");
  std::string logs = std::string(std::istreambuf_iterator<char>(a), {}) + std::string(std::istreambuf_iterator<char>(b), {});
  EXPECT_EQ(logs.find("cannot rename"), std::string::npos) << logs;
  EXPECT_EQ(shell(cli("verify train")).first, 0);
  EXPECT_TRUE(fs::is_empty(dir / "store" / "staging")) << "resume state removed once the model is committed";
}

// Permissions do not bind root: as root the read commands run as `nobody`.
TEST_F(StoreProcessTest, ReadCommandsWorkOnAReadOnlyStore) {
  auto file = write("pipeline.yaml", kQuick);
  ASSERT_EQ(shell(kBinary + " run " + file.string() + " --quiet").first, 0);
  const std::string as_user = ::getuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
  fs::permissions(dir, fs::perms::all, fs::perm_options::add);   // nobody may enter the test folder
  std::vector<fs::path> paths = {dir / "store"};
  for (const auto& e : fs::recursive_directory_iterator(dir / "store")) paths.push_back(e.path());
  for (const auto& p : paths)
    fs::permissions(p, fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write, fs::perm_options::remove);
  for (const std::string cmd : {"runs", "show", "profile", "verify"}) {
    auto [rc, out] = shell(as_user + cli(cmd));
    EXPECT_EQ(rc, 0) << cmd << ": " << out;
    EXPECT_EQ(out.find("moved aside"), std::string::npos) << out;
  }
  auto [rc, out] = shell(as_user + kBinary + " plan " + file.string());
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("cached"), std::string::npos) << out;
  auto [rc2, out2] = shell(as_user + kBinary + " run " + file.string() + " --quiet");
  EXPECT_EQ(rc2, 2) << out2;
  EXPECT_EQ(std::count(out2.begin(), out2.end(), '\n'), 1) << out2;
  for (const auto& p : paths) fs::permissions(p, fs::perms::owner_write, fs::perm_options::add);
}

// A real full disk: a small tmpfs (needs root to mount; skipped otherwise).
TEST_F(StoreProcessTest, DiskFullIsOneClearErrorAndAFailedRun) {
  fs::path disk = dir / "disk";
  fs::create_directories(disk);
  if (::mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=1m") != 0) GTEST_SKIP() << "cannot mount a tmpfs (not root)";
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{disk};
  auto file = write("pipeline.yaml", std::string(R"(pipeline: big
store: )") + (disk / "store").string() + R"(
stages:
  - name: numbers
    type: testing.sequence
    params: {count: 200000}
    batch_size: 1000
  - name: total
    type: testing.collect
    inputs: [numbers]
)");
  for (int attempt = 0; attempt < 2; ++attempt) {   // the second run meets an already full disk
    auto [rc, out] = shell(kBinary + " run " + file.string() + " --quiet");
    EXPECT_EQ(rc, 1) << out;
    EXPECT_EQ(out.find("terminate"), std::string::npos) << out;
    EXPECT_NE(out.find("lvmflow: error: "), std::string::npos) << out;
    EXPECT_NE(out.find("disk"), std::string::npos) << out;
  }
  Store store(disk / "store", StoreMode::ReadOnly);
  for (const auto& r : store.runs(10)) EXPECT_EQ(r.status, "failed") << r.id << " " << r.error;
}

}  // namespace
}  // namespace lvmflow::testing
