#pragma once
// Runs a pipeline: plans it, records the run, executes the graph, reports progress, turns
// the first error (or Ctrl-C) into a cancelled graph and a failed run naming stage and item.
#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <string>

#include "pipeline/graph.hpp"
#include "pipeline/plan.hpp"
#include "pipeline/spec.hpp"
#include "pipeline/store.hpp"

namespace lvmflow {

enum class ProgressMode { None, Lines, Terminal };

struct RunOptions {
  PlanOptions plan;
  GraphOptions graph;
  ProgressMode progress = ProgressMode::Lines;
  std::ostream* out = nullptr;       // progress and stage logs (stderr when null)
  std::string args;                  // the command line, recorded with the run
  // Set asynchronously (e.g. by a SIGINT handler) to cancel the run.
  const std::atomic<bool>* interrupt = nullptr;
  // The signal that set `interrupt` (SIGINT, SIGTERM), named in the run's error.
  const std::atomic<int>* interrupt_signal = nullptr;
};

struct RunResult {
  std::int64_t run_id = 0;
  std::string status;   // succeeded | failed | cancelled
  std::string error;
  Plan plan;
  double seconds = 0;
};

RunResult run_pipeline(const PipelineSpec& spec, Store& store, const RunOptions& options);

}  // namespace lvmflow
