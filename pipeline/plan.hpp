#pragma once
// The plan: stages in topological order, each with its cache key and what the run will do
// with it. Keys are known before anything runs, so `lvmflow plan` is exact.
//   key = SHA-256(type, implementation version, canonical output-affecting params,
//                 input keys in order, fingerprints of the files a source reads)
#include <set>
#include <string>
#include <vector>

#include "pipeline/shard.hpp"
#include "pipeline/spec.hpp"

namespace lvmflow {

class Store;

enum class Action {
  Run,      // not cached (or forced): the stage does its work
  Cached,   // cached and nothing downstream needs its data in this run
  Replay,   // cached; its stored output is streamed to stages that run
  Skipped,  // outside --until
};
const char* to_string(Action a);

struct PlannedStage {
  const StageSpec* spec = nullptr;
  std::string key;
  Action action = Action::Run;
  std::string reason;                  // why this action (for `plan`)
  // The stored output exists but failed its check (what was found); the stage runs again.
  std::string damage;
  // The commit replaces the stored folder (--force or damage) instead of keeping it.
  bool replace_stored = false;
  std::vector<std::size_t> inputs;     // indices into Plan::stages
  std::vector<std::size_t> consumers;  // indices of stages that read this one and execute
};

struct PlanOptions {
  std::set<std::string> force;   // stage (or foreach group) names to run even if cached
  std::string until;             // run only this stage and what it depends on
  // Only the shardable prefix takes part (pipeline/shard.hpp); the rest is skipped.
  bool shardable_only = false;
  // A shard's run (implies shardable_only): its keys are marked with the shard, so they can
  // never be mistaken for the unsharded stage's.
  ShardSpec shard;
};

struct Plan {
  std::vector<PlannedStage> stages;   // topological order
  std::size_t index_of(const std::string& name) const;
};

Plan make_plan(const PipelineSpec& spec, Store& store, const PlanOptions& options);

}  // namespace lvmflow
