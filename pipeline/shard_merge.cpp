#include "pipeline/shard_merge.hpp"

#include <chrono>

#include "pipeline/error.hpp"

namespace lvmflow {

namespace fs = std::filesystem;

std::vector<ShardStatus> check_shards(const PipelineSpec& spec, const fs::path& store_root, std::size_t count) {
  std::vector<ShardStatus> out;
  for (std::size_t i = 0; i < count; ++i) {
    ShardStatus status;
    status.shard = {i, count};
    status.dir = shard_store_dir(store_root, status.shard);
    if (!fs::exists(status.dir / "lvmflow.db")) {
      status.missing = "never ran (no store at " + status.dir.string() + ")";
      out.push_back(status);
      continue;
    }
    Store shard_store(status.dir);
    PlanOptions options;
    options.shard = status.shard;
    Plan plan = make_plan(spec, shard_store, options);
    for (const auto& p : plan.stages) {
      if (p.action == Action::Skipped || shard_store.find_cache(p.key)) continue;
      status.missing += (status.missing.empty() ? "stage '" : ", '") + p.spec->name + "'";
    }
    if (!status.missing.empty()) status.missing += " not committed";
    out.push_back(status);
  }
  return out;
}

MergeResult merge_shards(const PipelineSpec& spec, Store& store, std::size_t count, RunOptions options) {
  const auto statuses = check_shards(spec, store.root(), count);
  std::string incomplete, rerun;
  for (const auto& s : statuses) {
    if (s.missing.empty()) continue;
    incomplete += "\n  shard " + s.shard.text() + " incomplete: " + s.missing;
    rerun += (rerun.empty() ? "" : " and ") + s.shard.text();
  }
  if (!incomplete.empty())
    throw Error("lvmflow merge " + spec.file.string(), "not every shard finished:" + incomplete,
                "rerun those shards with the same --set values (lvmflow run " + spec.file.string() + " --shard " + rerun +
                    "), then merge again");

  MergeResult result;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& s : statuses) {
    store.import_artifacts(s.dir);   // before the item cache: its rows refer to these artifacts
    result.items_imported += store.import_item_cache(s.dir);
    const auto runs = store.import_runs(s.dir, "shard " + s.shard.text());
    result.imported_runs.insert(result.imported_runs.end(), runs.begin(), runs.end());
  }
  result.import_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  ReadOnlyItemCache shards_only(store);
  options.plan.shardable_only = true;
  options.plan.shard = {};
  options.graph.shard = {};
  options.graph.item_cache = &shards_only;
  result.run = run_pipeline(spec, store, options);
  return result;
}

}  // namespace lvmflow
