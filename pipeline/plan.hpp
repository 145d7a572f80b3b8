#pragma once
// The plan: stages in topological order, each with its cache key and what the run will do
// with it. Keys are known before anything runs, so `lvmflow plan` is exact.
//   key = SHA-256(type, implementation version, canonical output-affecting params,
//                 input keys in order, fingerprints of the files a stage reads)
// The key is hashed from its parts (KeyPart), which are kept so `lvmflow why` can say which
// part changed since a stage last ran.
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

// One part of a stage's cache key, in hashing order: kind "type" (name = type, value =
// implementation version), "param" (name, canonical value), "input" (input stage name, its
// key), "file" (path, SHA-256 of the content) or "batch_size" (value).
struct KeyPart {
  std::string kind, name, value;
  bool operator==(const KeyPart&) const = default;
};

struct PlannedStage {
  const StageSpec* spec = nullptr;
  std::string key;
  std::vector<KeyPart> key_parts;      // what `key` is the hash of
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

// The key of `parts` (identical to the keys lvmflow has always computed from them).
std::string key_of(const std::vector<KeyPart>& parts);

}  // namespace lvmflow
