#pragma once
// Spans -> per-stage latency profile: calls, items, busy time, wall span, p50/p95/p99 per
// batch and per item, items/s, share of run time, queueing, and the bottleneck stage.
#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/store.hpp"

namespace lvmflow {

struct Percentiles {
  double p50 = 0, p95 = 0, p99 = 0, max = 0;
};

struct StageProfile {
  std::string stage, type, action;
  std::int64_t calls = 0, items = 0;
  double busy_s = 0;          // sum of batch durations
  double wall_s = 0;          // first batch start to last batch end
  double first_start_s = 0;   // since the run started
  Percentiles batch_ms;       // per batch
  Percentiles item_ms;        // per item (batch time / batch items)
  Percentiles queued_ms;      // time a batch waited before its stage took it
  double items_per_s = 0;     // items / wall span
  double share = 0;           // busy time / run wall time
  bool bottleneck = false;
};

struct RunProfile {
  RunRecord run;
  double wall_s = 0;
  std::vector<StageProfile> stages;   // in pipeline order
};

Percentiles percentiles(std::vector<double> values);
RunProfile profile_run(Store& store, std::int64_t run_id);

}  // namespace lvmflow
