// Engine overhead benchmark: what the engine itself costs per batch and per stage hop, and
// proof that stages overlap in time. Compared in the same run with the usual Python way of
// chaining stages (one thread per stage, queue.Queue between them: engine_peer.py).
//
//   build/tools/bench/engine/lvmflow_engine_bench [batches]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "pipeline/executor.hpp"
#include "pipeline/profile.hpp"
#include "pipeline/spec.hpp"

using namespace lvmflow;
namespace fs = std::filesystem;

namespace {

std::string chain_yaml(int batches, int hops, const std::string& delay_ms) {
  std::string y = "pipeline: bench\nstore: store\nstages:\n  - name: s0\n    type: testing.sequence\n"
                  "    params: {count: " + std::to_string(batches) + "}\n    batch_size: 1\n";
  for (int h = 1; h <= hops; ++h)
    y += "  - name: s" + std::to_string(h) + "\n    type: testing.map\n    inputs: [s" + std::to_string(h - 1) +
         "]\n    params: {op: multiply, operand: 1, delay_ms: " + delay_ms + "}\n";
  y += "  - name: sink\n    type: testing.collect\n    inputs: [s" + std::to_string(hops) + "]\n";
  return y;
}

struct Timed {
  double seconds;
  RunProfile profile;
};

Timed run_yaml(const fs::path& dir, const std::string& yaml) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "p.yaml") << yaml;
  auto spec = load_spec(dir / "p.yaml", stage_registry());
  Store store(spec.store);
  RunOptions o;
  o.progress = ProgressMode::None;
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_pipeline(spec, store, o);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r.status != "succeeded") {
    std::fprintf(stderr, "bench run failed: %s\n", r.error.c_str());
    std::exit(1);
  }
  return {s, profile_run(store, r.run_id)};
}

}  // namespace

int main(int argc, char** argv) {
  int batches = argc > 1 ? std::atoi(argv[1]) : 20000;
  fs::path dir = fs::temp_directory_path() / ("lvmflow-engine-bench-" + std::to_string(::getpid()));

  // 1. Per-hop overhead: the same stream through 0 and 8 no-op map stages.
  const int hops = 8;
  double base = 1e9, chained = 1e9;
  for (int rep = 0; rep < 3; ++rep) {
    base = std::min(base, run_yaml(dir, chain_yaml(batches, 0, "0")).seconds);
    chained = std::min(chained, run_yaml(dir, chain_yaml(batches, hops, "0")).seconds);
  }
  double per_hop_us = (chained - base) / (static_cast<double>(batches) * hops) * 1e6;
  double per_batch_us = base / batches * 1e6;

  // 2. Overlap: two map stages that each sleep 5 ms per batch.
  auto overlap = run_yaml(dir, chain_yaml(60, 2, "5"));
  double busy = 0;
  for (const auto& s : overlap.profile.stages)
    if (s.stage == "s1" || s.stage == "s2") busy += s.busy_s;

  // The Python peer, same work, same machine, same run.
  std::string peer = std::string(LVMFLOW_SOURCE_DIR) + "/tools/bench/engine/engine_peer.py";
  std::string cmd = "/usr/bin/python3 " + peer + " " + std::to_string(batches);
  double py_hop_us = -1, py_overlap_wall = -1, py_overlap_busy = -1;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    if (std::fscanf(p, "%lf %lf %lf", &py_hop_us, &py_overlap_wall, &py_overlap_busy) != 3) py_hop_us = -1;
    ::pclose(p);
  }

  std::printf("lvmflow engine benchmark (%d batches of 1 item, %d no-op hops)\n\n", batches, hops);
  std::printf("%-44s %14s %14s\n", "measure", "lvmflow", "python peer");
  std::printf("%-44s %14.2f %14.2f\n", "overhead per stage hop (us per batch)", per_hop_us, py_hop_us);
  std::printf("%-44s %14.2f %14s\n", "source+sink per batch incl. store (us)", per_batch_us, "-");
  std::printf("%-44s %14.3f %14.3f\n", "2 x 5 ms/batch stages, 60 batches: wall s", overlap.seconds, py_overlap_wall);
  std::printf("%-44s %14.3f %14.3f\n", "   sum of the two stages' busy time s", busy, py_overlap_busy);
  std::printf("%-44s %14s %14s\n", "   overlap (wall < sum of busy)", overlap.seconds < busy ? "yes" : "no",
              py_overlap_wall >= 0 && py_overlap_wall < py_overlap_busy ? "yes" : "no");
  fs::remove_all(dir);
  return 0;
}
