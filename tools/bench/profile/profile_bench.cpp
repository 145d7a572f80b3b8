// What recording spans costs: the same pipeline run with span recording on and off
// (GraphOptions::record_spans), alternating, each run in a fresh store, and the cost per span
// measured where it is paid (clock reads in the graph, the insert into the store).
//
//   build/tools/bench/profile/lvmflow_profile_bench [--reps N] [--pipeline FILE]... [--pipeline-reps N]
//
// Built-in workloads: "worst case" (20000 one-item batches through a map that does nothing:
// all engine, no work) and "realistic" (512 batches of 32 items through two CPU-bound maps of
// about 1-3 ms per batch, the scale of chunking or encoding). --pipeline FILE adds a pipeline
// file (e.g. config/quickstart.yaml), run from scratch each time in a throw-away store,
// --pipeline-reps times (default 1) with no warm-up run: they take minutes. The built-in
// workloads get one warm-up run first.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "pipeline/error.hpp"
#include "pipeline/executor.hpp"
#include "pipeline/hash.hpp"
#include "pipeline/spec.hpp"

using namespace lvmflow;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// CPU-bound map: `rounds` chained SHA-256 per item, so a batch costs real compute, not a sleep.
class HashChainMap : public MapStage {
 public:
  explicit HashChainMap(const Params& p) : rounds_(p.get_int("rounds")) {}
  Batch process(StageContext&, const Batch& in) override {
    Batch out;
    out.ids = in.ids;
    auto& value = out.ints["value"];
    for (std::size_t r = 0; r < in.rows(); ++r) {
      std::string digest = in.ids[r];
      for (std::int64_t i = 0; i < rounds_; ++i) digest = sha256_hex(digest);
      value.push_back(static_cast<std::int64_t>(digest[0]));
    }
    return out;
  }

 private:
  std::int64_t rounds_;
};

StageRegistry bench_registry() {
  StageRegistry r;
  register_all_stages(r);
  r.add({"bench.hash_chain", 1, StageKind::Map, "Chained SHA-256 per item (CPU-bound benchmark work).",
         {{"rounds", ParamType::Int, "100", "SHA-256 rounds per item"}},
         1, 1, [](const Params& p) { return std::make_unique<HashChainMap>(p); }},
        "bench");
  return r;
}

struct Workload {
  std::string name;
  fs::path spec_file;
  std::vector<double> on_s, off_s;           // wall seconds
  std::vector<double> on_cpu_s, off_cpu_s;   // this process's CPU seconds: less disturbed by other load
  std::size_t spans = 0;
};

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Timing {
  double wall_s = 0, cpu_s = 0;
};

// One run in a fresh store (so every stage runs): wall seconds of run_pipeline and the CPU
// seconds the process spent meanwhile.
Timing timed_run(const StageRegistry& registry, const fs::path& spec_file, const fs::path& store_dir, bool spans,
                 std::size_t* span_count) {
  fs::remove_all(store_dir);
  PipelineSpec spec = load_spec(spec_file, registry, {}, store_dir.string());
  Store store(spec.store);
  RunOptions o;
  o.progress = ProgressMode::None;
  o.graph.record_spans = spans;
  double cpu0 = cpu_seconds();
  RunResult r = run_pipeline(spec, store, o);
  double cpu = cpu_seconds() - cpu0;
  if (r.status != "succeeded") throw Error(spec_file.string(), "benchmark run failed: " + r.error);
  if (span_count) *span_count = store.spans(r.run_id).size();
  return {r.seconds, cpu};
}

void measure(const StageRegistry& registry, Workload& w, const fs::path& scratch, int reps, bool warm_up) {
  fs::path store_dir = scratch / "store";
  if (warm_up) timed_run(registry, w.spec_file, store_dir, true, nullptr);   // page cache, allocator
  for (int rep = 0; rep < reps; ++rep) {
    // Alternate which goes first so drift in machine load hits both sides alike.
    for (bool spans : {rep % 2 == 0, rep % 2 != 0}) {
      std::size_t count = 0;
      Timing t = timed_run(registry, w.spec_file, store_dir, spans, &count);
      (spans ? w.on_s : w.off_s).push_back(t.wall_s);
      (spans ? w.on_cpu_s : w.off_cpu_s).push_back(t.cpu_s);
      if (spans) w.spans = count;
    }
    std::fprintf(stderr, "  %s: rep %d/%d done\n", w.name.c_str(), rep + 1, reps);
  }
}

fs::path write_spec(const fs::path& dir, const std::string& name, const std::string& yaml) {
  fs::create_directories(dir);
  fs::path p = dir / (name + ".yaml");
  std::ofstream(p) << yaml;
  return p;
}

// Cost of one span where it is paid: two steady_clock reads around the batch, and one row
// inserted into the store's spans table at the end of the run (one transaction per stage).
std::pair<double, double> per_span_costs_ns(const fs::path& scratch) {
  const int reads = 2000000;
  volatile std::int64_t last = 0;   // keeps the reads from being optimised away
  auto t0 = Clock::now();
  for (int i = 0; i < reads; ++i) last = Clock::now().time_since_epoch().count();
  double clock_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / reads;
  (void)last;

  fs::remove_all(scratch / "span-store");
  Store store(scratch / "span-store");
  std::int64_t run = store.begin_run("spans", "-", "");
  // As at the end of a run: one add_spans call (one transaction) per stage.
  const int stages = 8, per_stage = 12500;
  std::vector<std::vector<Span>> by_stage(stages);
  for (int s = 0; s < stages; ++s)
    for (int i = 0; i < per_stage; ++i)
      by_stage[s].push_back({"stage-" + std::to_string(s), static_cast<std::uint64_t>(i), i * 1000LL, i * 1000LL + 500, 10, 64, 4242});
  t0 = Clock::now();
  for (const auto& spans : by_stage) store.add_spans(run, spans);
  double insert_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / (stages * per_stage);
  return {2 * clock_ns, insert_ns};
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5, pipeline_reps = 1;
  std::vector<fs::path> pipelines;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--pipeline-reps" && i + 1 < argc) pipeline_reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--pipeline" && i + 1 < argc) pipelines.push_back(fs::absolute(argv[++i]));
    else {
      std::fprintf(stderr, "usage: %s [--reps N] [--pipeline FILE]... [--pipeline-reps N]\n", argv[0]);
      return 2;
    }
  }
  try {
    StageRegistry registry = bench_registry();
    fs::path scratch = fs::temp_directory_path() / ("lvmflow-profile-bench-" + std::to_string(::getpid()));
    std::vector<Workload> workloads;
    workloads.push_back({"worst case: 20000 x 1-item batches, no-op map",
                         write_spec(scratch, "worst", R"(pipeline: worst
stages:
  - {name: source, type: testing.sequence, params: {count: 20000}, batch_size: 1}
  - {name: noop, type: testing.map, inputs: [source], params: {op: add, operand: 0}}
  - {name: sink, type: testing.collect, inputs: [noop]}
)")});
    workloads.push_back({"realistic: 512 x 32-item batches, 2 CPU-bound maps",
                         write_spec(scratch, "realistic", R"(pipeline: realistic
stages:
  - {name: source, type: testing.sequence, params: {count: 16384}, batch_size: 32}
  - {name: heavy, type: bench.hash_chain, inputs: [source], params: {rounds: 60}, concurrency: 2}
  - {name: light, type: bench.hash_chain, inputs: [heavy], params: {rounds: 25}}
  - {name: sink, type: testing.collect, inputs: [light]}
)")});
    for (const auto& p : pipelines) workloads.push_back({p.filename().string() + " (from scratch)", p});

    for (std::size_t i = 0; i < workloads.size(); ++i)
      measure(registry, workloads[i], scratch, i < 2 ? reps : pipeline_reps, i < 2);
    auto [clock_ns, insert_ns] = per_span_costs_ns(scratch);
    double span_ns = clock_ns + insert_ns;

    std::printf("lvmflow span recording overhead (%d alternating on/off runs per built-in workload; %u cores)\n\n", reps,
                std::max(1u, static_cast<unsigned>(::sysconf(_SC_NPROCESSORS_ONLN))));
    std::printf("cost per span: %.0f ns clock reads + %.0f ns store insert = %.2f us\n\n", clock_ns, insert_ns,
                span_ns / 1e3);
    std::printf("%-52s %7s %10s %10s %9s %10s %10s %9s %11s\n", "workload", "spans", "wall on s", "wall off s",
                "wall A/B", "cpu on s", "cpu off s", "cpu A/B", "spans x cost");
    for (const auto& w : workloads) {
      double on = median(w.on_s), off = median(w.off_s), cpu_on = median(w.on_cpu_s), cpu_off = median(w.off_cpu_s);
      // A/B: medians of the alternating runs; on a busy machine they move by more than span
      // recording costs. Spans x measured cost per span, over the run time with recording off,
      // is the figure that noise cannot hide.
      double accounted = w.spans * span_ns / 1e9 / off;
      std::printf("%-52s %7zu %10.3f %10.3f %+8.2f%% %10.3f %10.3f %+8.2f%% %10.4f%%\n", w.name.c_str(), w.spans, on,
                  off, 100 * (on - off) / off, cpu_on, cpu_off, 100 * (cpu_on - cpu_off) / cpu_off, 100 * accounted);
    }
    std::printf("\nevery run, wall s (cpu s), in the order they ran:\n");
    for (const auto& w : workloads) {
      std::printf("  %s\n   ", w.name.c_str());
      for (std::size_t i = 0; i < w.on_s.size(); ++i) {
        bool on_first = i % 2 == 0;
        for (bool on : {on_first, !on_first})
          std::printf(" %s %.3f (%.3f)", on ? "on" : "off", on ? w.on_s[i] : w.off_s[i], on ? w.on_cpu_s[i] : w.off_cpu_s[i]);
      }
      std::printf("\n");
    }
    fs::remove_all(scratch);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lvmflow_profile_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
