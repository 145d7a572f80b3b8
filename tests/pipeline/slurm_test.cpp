// `lvmflow submit` against a real single-node Slurm cluster that the test starts itself from
// Debian's packages (munge, slurmctld, slurmd, slurm-client; tools/setup.sh installs them):
// munged, slurmctld and slurmd run in the foreground as children of this test, with their
// state in a temp folder, and are stopped by pid at the end.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <thread>

#include "stages/lvm/training_ranks.hpp"   // free_local_port
#include "tests/pipeline/pipeline_fixture.hpp"

namespace lvmflow::testing {
namespace {

namespace fs = std::filesystem;

bool have_program(const std::string& name) { return shell("command -v " + name).first == 0; }

class SlurmTest : public PipelineFixture {
 protected:
  void SetUp() override {
    PipelineFixture::SetUp();
    if (::geteuid() != 0) GTEST_SKIP() << "slurmd must run as root to start jobs";
    for (const char* p : {"munged", "mungekey", "slurmctld", "slurmd", "sbatch", "scontrol"})
      if (!have_program(p)) GTEST_SKIP() << p << " not installed (bash tools/setup.sh installs Slurm and munge)";
    cluster = dir / "cluster";
    fs::create_directories(cluster / "state");
    fs::create_directories(cluster / "spool");
    fs::permissions(cluster, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    ASSERT_EQ(shell("mungekey -c -k " + (cluster / "munge.key").string()).first, 0);
    start("munged", {"munged", "-F", "-f", "--key-file=" + (cluster / "munge.key").string(),
                     "--socket=" + (cluster / "munge.sock").string(), "--pid-file=" + (cluster / "munged.pid").string(),
                     "--log-file=" + (cluster / "munged.log").string(), "--seed-file=" + (cluster / "munged.seed").string()});
    for (int i = 0; i < 500 && !fs::exists(cluster / "munge.sock"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    write_config();
    ::setenv("SLURM_CONF", (cluster / "slurm.conf").c_str(), 1);
    start("slurmctld", {"slurmctld", "-D", "-i", "-f", (cluster / "slurm.conf").string()});
    start("slurmd", {"slurmd", "-D", "-f", (cluster / "slurm.conf").string()});
    for (int i = 0; i < 300; ++i) {   // until the node is up
      auto [rc, out] = shell("sinfo -h -o %T");
      if (rc == 0 && (out.find("idle") == 0 || out.find("mixed") == 0)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "the Slurm node did not come up:\n" << read_file_bytes(cluster / "slurmctld.out") << read_file_bytes(cluster / "slurmd.out");
  }
  void TearDown() override {
    for (auto it = daemons.rbegin(); it != daemons.rend(); ++it) {
      ::kill(it->second, SIGTERM);
      int status = 0;
      ::waitpid(it->second, &status, 0);
    }
    ::unsetenv("SLURM_CONF");
    PipelineFixture::TearDown();
  }

  void start(const std::string& name, const std::vector<std::string>& argv) {
    const std::string log = (cluster / (name + ".out")).string();
    pid_t pid = ::fork();
    if (pid == 0) {
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      if (!std::freopen(log.c_str(), "w", stdout) || !std::freopen(log.c_str(), "a", stderr)) ::_exit(126);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    daemons.emplace_back(name, pid);
  }

  void write_config() {
    const std::string c = cluster.string();
    auto [rc, node] = shell("slurmd -C | head -1");   // this host's NodeName line (CPUs, memory)
    ASSERT_EQ(rc, 0) << node;
    node = node.substr(0, node.find('\n'));
    auto [rc2, host] = shell("hostname");
    host = host.substr(0, host.find('\n'));
    std::ofstream(cluster / "slurm.conf")
        << "ClusterName=lvmflowtest\nSlurmctldHost=" << host << "\nSlurmctldPort=" << free_local_port()
        << "\nSlurmdPort=" << free_local_port() << "\nAuthType=auth/munge\nAuthInfo=socket=" << c
        << "/munge.sock\nCredType=cred/munge\nProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
           "SchedulerType=sched/backfill\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n"
           "StateSaveLocation="
        << c << "/state\nSlurmdSpoolDir=" << c << "/spool\nSlurmctldPidFile=" << c
        << "/slurmctld.pid\nSlurmdPidFile=" << c << "/slurmd.pid\nSlurmctldLogFile=" << c
        << "/slurmctld.log\nSlurmdLogFile=" << c
        << "/slurmd.log\nSlurmUser=root\nSlurmdUser=root\nReturnToService=2\nMpiDefault=none\n"
           "JobCompType=jobcomp/none\nAccountingStorageType=accounting_storage/none\n"
           "JobAcctGatherType=jobacct_gather/none\n"
        << node << " State=UNKNOWN\nPartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE\n";
  }

  // Waits for job `id` to end; returns its final JobState.
  std::string wait_for_job(const std::string& id, int seconds) {
    const std::regex state("JobState=(\\S+)"), reason("Reason=(\\S+)");
    for (int i = 0; i < seconds * 2; ++i) {
      auto [rc, out] = shell("scontrol show job " + id);
      std::smatch m, r;
      if (rc == 0 && std::regex_search(out, m, state)) {
        const std::string s = m[1];
        if (s != "PENDING" && s != "RUNNING" && s != "CONFIGURING" && s != "COMPLETING") return s;
        if (std::regex_search(out, r, reason) && r[1] == "DependencyNeverSatisfied") return "DependencyNeverSatisfied";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    return "TIMEOUT";
  }

  fs::path cluster;
  std::vector<std::pair<std::string, pid_t>> daemons;
};

TEST_F(SlurmTest, SubmitWithThreeShardsMatchesTheUnshardedRun) {
  const auto file = write("pipeline.yaml", sample_rebuild_yaml("slurm", R"(  - name: train
    type: lvm.train
    inputs: [windows]
    params: {arch: amn, hidden: 32, epochs: 1}
)"));
  const std::string lvmflow = LVMFLOW_BINARY;
  auto [rc, out] = shell(lvmflow + " run " + file.string() + " --quiet --store " + (dir / "reference").string());
  ASSERT_EQ(rc, 0) << out;

  std::tie(rc, out) = shell("cd " + dir.string() + " && " + lvmflow + " submit " + file.string() +
                            " --shards 3 --slurm-args '--partition=debug --time=10' --rest-slurm-args --ntasks=2");
  ASSERT_EQ(rc, 0) << out;
  std::smatch ids;
  ASSERT_TRUE(std::regex_search(out, ids, std::regex("shard (\\d+)\nmerge (\\d+)\nrest (\\d+)"))) << out;
  const std::string rest_state = wait_for_job(ids[3], 300);
  const fs::path logs = *fs::directory_iterator(dir / "store" / "slurm");
  ASSERT_EQ(rest_state, "COMPLETED") << read_file_bytes(logs / "shard-0.out") << read_file_bytes(logs / "shard-1.out")
                                     << read_file_bytes(logs / "merge.out") << read_file_bytes(logs / "rest.out")
                                     << read_file_bytes(cluster / "slurmctld.log");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(wait_for_job(std::string(ids[1]) + "_" + std::to_string(i), 10), "COMPLETED");
  EXPECT_EQ(wait_for_job(ids[2], 10), "COMPLETED");

  // Same keys, same artifacts as one machine. The rest job trained data-parallel over its two
  // srun tasks, which matches one process within float rounding (tests/stages/lvm check the
  // weights); here the validation cosine in model.json must agree.
  auto s = load_spec(file, stage_registry());
  auto ref = load_spec(file, stage_registry(), {}, (dir / "reference").string());
  Store merged(s.store), reference(ref.store);
  const auto merged_plan = make_plan(s, merged, {}), reference_plan = make_plan(ref, reference, {});
  for (std::size_t i = 0; i < merged_plan.stages.size(); ++i) {
    const auto& p = merged_plan.stages[i];
    EXPECT_EQ(p.key, reference_plan.stages[i].key) << p.spec->name;
    EXPECT_EQ(p.action, Action::Cached) << p.spec->name << " was not committed by the Slurm jobs";
    if (p.spec->type == "lvm.train") {
      const std::regex cosine("\"val_cosine\":\\s*([-0-9.e]+)");
      std::smatch a, b;
      const std::string merged_json = read_file_bytes(merged.artifact_path(p.key) / "model.json");
      const std::string reference_json = read_file_bytes(reference.artifact_path(p.key) / "model.json");
      ASSERT_TRUE(std::regex_search(merged_json, a, cosine)) << merged_json;
      ASSERT_TRUE(std::regex_search(reference_json, b, cosine)) << reference_json;
      EXPECT_NEAR(std::stod(a[1]), std::stod(b[1]), 1e-4);
      EXPECT_NE(read_file_bytes(logs / "rest.out").find("rank 1/2: training amn"), std::string::npos) << read_file_bytes(logs / "rest.out");
      continue;
    }
    for (const auto& e : fs::directory_iterator(reference.artifact_path(p.key))) {
      const auto name = e.path().filename().string();
      EXPECT_EQ(read_file_bytes(merged.artifact_path(p.key) / name), read_file_bytes(e.path())) << p.spec->name << "/" << name;
    }
  }
}

}  // namespace
}  // namespace lvmflow::testing
