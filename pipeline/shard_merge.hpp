#pragma once
// `lvmflow merge`: shards' stores -> the main store (see pipeline/shard.hpp for the design).
#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/executor.hpp"

namespace lvmflow {

struct ShardStatus {
  ShardSpec shard;
  std::filesystem::path dir;
  std::string missing;   // empty: every shardable stage committed; else what is missing
};

// Every shard's store checked for committed output of each shardable stage (under the keys
// its `lvmflow run --shard` computes with the same spec). Opens no store that does not exist.
std::vector<ShardStatus> check_shards(const PipelineSpec& spec, const std::filesystem::path& store_root,
                                      std::size_t count);

struct MergeResult {
  RunResult run;                       // the unsharded prefix run in the main store
  std::int64_t items_imported = 0;     // item-cache rows new to the main store
  std::vector<std::int64_t> imported_runs;
  double import_seconds = 0;
};

// Checks the shards (throws lvmflow::Error naming every incomplete shard and how to rerun it),
// imports their item caches and runs, then runs the shardable prefix unsharded in `store`
// with an item cache that refuses new items, so nothing expensive is computed twice.
MergeResult merge_shards(const PipelineSpec& spec, Store& store, std::size_t count, RunOptions options);

}  // namespace lvmflow
