#include "tools/lvmflow/shard_commands.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "pipeline/error.hpp"
#include "pipeline/shard_merge.hpp"
#include "tools/lvmflow/json_writer.hpp"

extern char** environ;

namespace lvmflow {

namespace fs = std::filesystem;

void apply_shard_option(const std::string& text, PipelineSpec& spec, RunOptions& options) {
  const ShardSpec shard = parse_shard(text, "--shard");
  spec.store = shard_store_dir(spec.store, shard);
  options.plan.shard = shard;
  options.graph.shard = shard;
}

int merge_command(const PipelineSpec& spec, std::size_t shards, const RunOptions& options, bool json) {
  Store store(spec.store);
  MergeResult m = merge_shards(spec, store, shards, options);
  int merged = 0;
  for (const auto& p : m.run.plan.stages) merged += p.action != Action::Skipped;
  if (json) {
    JsonWriter j(std::cout);
    j.begin_object().field("run", static_cast<long long>(m.run.run_id)).field("status", m.run.status)
        .field("error", m.run.error).field("seconds", m.run.seconds).field("import_seconds", m.import_seconds)
        .field("shards", static_cast<long long>(shards)).field("items_imported", static_cast<long long>(m.items_imported))
        .field("runs_imported", static_cast<long long>(m.imported_runs.size())).field("stages_merged", merged)
        .field("store", spec.store.string()).end_object();
    std::cout << "\n";
  } else {
    std::fprintf(stderr,
                 "merge of %zu shard(s): %lld item(s) and %zu run record(s) imported in %.2f s; run %lld %s in %.2f s: "
                 "%d shardable stage(s) in the main store (store %s)\n",
                 shards, static_cast<long long>(m.items_imported), m.imported_runs.size(), m.import_seconds,
                 static_cast<long long>(m.run.run_id), m.run.status.c_str(), m.run.seconds, merged, spec.store.c_str());
  }
  if (!m.run.error.empty()) {
    std::cerr << "lvmflow: error: " << m.run.error << "\n";
    return 1;
  }
  return 0;
}

namespace {

// Single-quoted for bash: safe for any path or value.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

fs::path this_program() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("lvmflow submit", "cannot find the lvmflow binary (/proc/self/exe)");
  return self;
}

struct JobScript {
  std::string name;       // shard | merge | rest
  fs::path file;
  std::string text;
};

// One lvmflow command per job: the same binary, pipeline and options on every node (the
// paths must be visible there: a shared file system).
std::string lvmflow_line(const fs::path& program, const std::string& command, const fs::path& pipeline,
                         const std::vector<std::string>& args, const std::string& extra,
                         const std::string& launcher = "") {
  std::string line = "exec " + launcher + shell_quote(program.string()) + " " + command + " " + shell_quote(pipeline.string());
  for (const auto& a : args) line += " " + shell_quote(a);
  return line + extra + "\n";
}

std::vector<JobScript> make_scripts(const PipelineSpec& spec, const SubmitRequest& r, const fs::path& dir) {
  const fs::path program = this_program();
  const fs::path pipeline = fs::absolute(r.pipeline_file);
  const std::string n = std::to_string(r.shards);
  auto header = [&](const std::string& job, const std::string& log) {
    return "#!/bin/bash\n"
           "#SBATCH --job-name=lvmflow-" + job + "-" + spec.name + "\n"
           "#SBATCH --output=" + (dir / log).string() + "\n" +
           (job == "shard" ? "#SBATCH --array=0-" + std::to_string(r.shards - 1) + "\n" : std::string()) +
           "# Written by lvmflow submit; options given with --slurm-args go on the sbatch command line.\n"
           "set -euo pipefail\n"
           "cd " + shell_quote(fs::current_path().string()) + "\n";
  };
  std::vector<JobScript> scripts = {
      {"shard", dir / "shard.sbatch",
       header("shard", "shard-%a.out") + "# One array task per shard: its articles, its own store under the main store.\n" +
           lvmflow_line(program, "run", pipeline, r.pipeline_args, " --shard \"${SLURM_ARRAY_TASK_ID}/" + n + "\" --quiet")},
      {"merge", dir / "merge.sbatch",
       header("merge", "merge.out") + "# After every shard succeeded: shards -> main store, same keys as an unsharded run.\n" +
           lvmflow_line(program, "merge", pipeline, r.pipeline_args, " --shards " + n + " --quiet")},
      {"rest", dir / "rest.sbatch",
       header("rest", "rest.out") +
           "# The rest of the pipeline, as if nothing had been sharded. With several tasks (--ntasks,\n"
           "# --nodes) srun starts one rank per task: rank 0 runs the pipeline and lvm.train trains\n"
           "# data-parallel over all of them (c10d Gloo, rendezvous on the job's first node).\n"
           "export MASTER_ADDR=\"$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)\"\n"
           "export MASTER_PORT=\"${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 20000))}\"\n" +
           lvmflow_line(program, "run", pipeline, r.pipeline_args, " --quiet", "srun ")},
  };
  return scripts;
}

// Runs argv (no shell) and returns its stdout; throws lvmflow::Error when it fails.
std::string run_and_capture(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe(fds) != 0) throw Error("lvmflow submit", "pipe() failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; rc == 0 && (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, std::size_t(n));
  ::close(fds[0]);
  std::string command;
  for (const auto& a : argv) command += (command.empty() ? "" : " ") + a;
  if (rc != 0) throw Error("lvmflow submit", "cannot start " + argv[0], "is Slurm's client (sbatch) installed and on PATH?");
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error("lvmflow submit", "'" + command + "' failed (its message is above)", "check the --slurm-args and the cluster");
  return out;
}

// sbatch --parsable prints "jobid" or "jobid;cluster".
std::string submit_job(const fs::path& script, const std::vector<std::string>& slurm_args, const std::string& after) {
  std::vector<std::string> argv = {"sbatch", "--parsable"};
  argv.insert(argv.end(), slurm_args.begin(), slurm_args.end());
  if (!after.empty()) argv.push_back("--dependency=afterok:" + after);
  argv.push_back(script.string());
  std::string out = run_and_capture(argv);
  std::string id = out.substr(0, out.find_first_of(";\n"));
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    throw Error("lvmflow submit", "sbatch printed '" + out + "' instead of a job id");
  return id;
}

}  // namespace

int submit_command(const PipelineSpec& spec, const SubmitRequest& r) {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
  const fs::path dir = fs::absolute(spec.store) / "slurm" / (std::string(stamp) + "-" + std::to_string(::getpid()));
  const auto scripts = make_scripts(spec, r, dir);
  if (r.dry_run) {
    for (const auto& s : scripts) std::cout << "# ---- " << s.file.filename().string() << "\n" << s.text << "\n";
    std::string extra = r.slurm_args.empty() ? "" : " " + r.slurm_args;
    std::cout << "# submitted as: sbatch --parsable" << extra << " shard.sbatch; then sbatch --parsable" << extra
              << " --dependency=afterok:<shard array> merge.sbatch; then sbatch --parsable" << extra
              << (r.rest_slurm_args.empty() ? "" : " " + r.rest_slurm_args) << " --dependency=afterok:<merge> rest.sbatch\n";
    return 0;
  }
  fs::create_directories(dir);
  for (const auto& s : scripts) {
    std::ofstream f(s.file);
    f << s.text;
    if (!f) throw Error(s.file.string(), "cannot write the sbatch script", "check that the store folder is writable");
  }
  const auto slurm_args = split_words(r.slurm_args);
  std::string previous;
  for (const auto& s : scripts) {
    auto args = slurm_args;
    if (s.name == "rest")
      for (const auto& a : split_words(r.rest_slurm_args)) args.push_back(a);
    previous = submit_job(s.file, args, previous);
    std::cout << s.name << " " << previous << "\n";
  }
  std::cerr << "submitted " << r.shards << " shard(s), merge and rest; scripts and job logs in " << dir.string() << "\n";
  return 0;
}

}  // namespace lvmflow
