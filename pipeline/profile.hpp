#pragma once
// Spans -> per-stage latency profile: calls, items, busy and active time, wall span,
// p50/p95/p99 per batch and per item, items/s, share of run time, queueing, and the
// bottleneck stage; and the comparison of two runs stage by stage. How to read them:
// docs/profile.md.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/store.hpp"

namespace lvmflow {

struct Percentiles {
  double p50 = 0, p95 = 0, p99 = 0, max = 0;
};

struct StageProfile {
  std::string stage, type, action, status;
  std::vector<std::string> inputs;   // the stages it reads, in input order (from stage_inputs)
  std::int64_t calls = 0, items = 0;
  double busy_s = 0;          // sum of batch durations (exceeds active_s when batches overlap)
  double active_s = 0;        // time at least one of its batches was in progress
  double wall_s = 0;          // first batch start to last batch end
  double first_start_s = 0;   // since the run started
  double last_end_s = 0;
  Percentiles batch_ms;       // per batch
  Percentiles item_ms;        // per item (batch time / batch items)
  Percentiles queued_ms;      // time a batch waited before its stage took it (map stages)
  double queued_s = 0;        // total of the above
  double items_per_s = 0;     // items / wall span
  double share = 0;           // active time / run wall time: how much of the run it worked
  double parallelism = 0;     // busy / active: batches in progress at once, on average
  int max_parallel = 0;       // most batches in progress at once
  bool bottleneck = false;
};

// A run's status as shown to people: a "running" run whose process is gone was killed and is
// shown as "interrupted".
std::string shown_status(const RunRecord& run);
// A stage's status as shown: a stage still pending or running in an interrupted run never
// finished, and is shown as "interrupted".
std::string shown_status(const RunRecord& run, const StageRunRecord& stage);

struct RunProfile {
  RunRecord run;
  double wall_s = 0;                  // graph start to the last stage's end
  bool has_edges = false;             // stage_inputs rows exist (runs of older lvmflow lack them)
  std::vector<StageProfile> stages;   // pipeline order: inputs before the stages that read them
  const StageProfile* bottleneck() const;
  const StageProfile* find(const std::string& stage) const;
};

// A numeric column of the profile, named as in --json/--csv output. One list drives the
// profile's CSV, its JSON and the ratios of `compare`, so they cannot drift apart.
struct ProfileField {
  const char* name;
  double (*get)(const StageProfile&);
};
const std::vector<ProfileField>& profile_fields();

Percentiles percentiles(std::vector<double> values);
// Length of the union of [start, end) intervals (in any order).
double union_length(std::vector<std::pair<double, double>> intervals);
RunProfile profile_run(Store& store, std::int64_t run_id);

// Two runs of (usually) the same pipeline, stage by stage, matched by stage name.
struct StageComparison {
  std::string stage;
  std::optional<StageProfile> a, b;   // one is empty when the stage is in one run only
  // b/a for each of profile_fields(); NaN when not both present or a is 0.
  std::vector<double> ratios;
};

struct RunComparison {
  RunProfile a, b;
  double wall_ratio = 0;
  std::vector<StageComparison> stages;   // a's order, stages only in b after their predecessor
};

double ratio(double a, double b);   // b / a, NaN when a is 0
RunComparison compare_runs(Store& store, std::int64_t run_a, std::int64_t run_b);

}  // namespace lvmflow
