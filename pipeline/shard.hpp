#pragma once
// Sharded runs (docs/scale-out.md). `lvmflow run PIPE --shard I/N` runs the shardable prefix of
// a pipeline - its sources and the map stages fed only by them, up to the first barrier - on
// the articles whose stable hash of the article id is I mod N, into a store of its own under
// the main store. `lvmflow merge PIPE --shards N` checks that every shard finished, brings the
// shards' item caches and run records into the main store, and runs the prefix there
// unsharded with an item cache that refuses new items: every expensive item (an encoded
// chunk) comes from a shard, and the committed artifacts and cache keys are those of an
// unsharded run by construction.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/batch.hpp"
#include "pipeline/stage.hpp"

namespace lvmflow {

struct PlannedStage;

struct ShardSpec {
  std::size_t index = 0, count = 0;   // count 0: not sharded
  bool active() const { return count > 0; }
  std::string text() const { return std::to_string(index) + "/" + std::to_string(count); }
};

// "I/N" with 0 <= I < N; throws lvmflow::Error naming `where` otherwise.
ShardSpec parse_shard(const std::string& text, const std::string& where);
// N >= 1 from the text of --shards; throws lvmflow::Error otherwise.
std::size_t parse_shard_count(const std::string& text, const std::string& where);

// The shard a row of a source's output belongs to: FNV-1a 64 of its article id (the
// `article_id` column when present, else the row id up to its first '#') mod N.
std::size_t shard_of_row(const Batch& batch, std::size_t row, std::size_t count);

// Wraps a source stage so it emits only the rows of `shard` (batches left empty are skipped).
std::unique_ptr<Stage> shard_filtered_source(std::unique_ptr<Stage> source, ShardSpec shard);

// Which stages of a plan (topological order, inputs filled in) are shardable: sources, and
// map stages all of whose inputs are shardable.
std::vector<bool> shardable_stages(const std::vector<PlannedStage>& stages);

// Where shard I of N keeps its store: <store>/shards/I-of-N.
std::filesystem::path shard_store_dir(const std::filesystem::path& store_root, ShardSpec shard);

// An item cache that answers from `inner` and refuses to store new items: a merge must find
// every item in the shards' caches. put_many throws lvmflow::Error naming the first key.
class ReadOnlyItemCache : public ItemCache {
 public:
  explicit ReadOnlyItemCache(ItemCache& inner) : inner_(inner) {}
  std::vector<std::optional<std::string>> get_many(const std::string& ns,
                                                   const std::vector<std::string>& keys) override;
  void put_many(const std::string& ns,
                const std::vector<std::pair<std::string, std::string>>& entries) override;

 private:
  ItemCache& inner_;
};

}  // namespace lvmflow
