#include "pipeline/shard.hpp"

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"
#include "pipeline/plan.hpp"

namespace lvmflow {

namespace {

std::size_t parse_count(const std::string& text, const std::string& where, const std::string& what) {
  std::size_t used = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || text[0] == '-')
    throw Error(where, "'" + text + "' is not " + what, "e.g. --shard 0/4 or --shards 4");
  return static_cast<std::size_t>(n);
}

class ShardFilteredSource : public SourceStage {
 public:
  ShardFilteredSource(std::unique_ptr<Stage> inner, ShardSpec shard)
      : inner_(std::move(inner)), source_(dynamic_cast<SourceStage&>(*inner_)), shard_(shard) {}

  bool next(StageContext& ctx, Batch& out, std::size_t batch_size) override {
    // The source decides its batches from all articles; a shard keeps its rows of each, so
    // article order within the shard is the unsharded order.
    for (;;) {
      Batch all;
      if (!source_.next(ctx, all, batch_size)) return false;
      Batch kept;
      for (std::size_t r = 0; r < all.rows(); ++r)
        if (shard_of_row(all, r, shard_.count) == shard_.index) kept.append(all.slice(r, r + 1));
      if (kept.rows() == 0) continue;
      out = std::move(kept);
      return true;
    }
  }

 private:
  std::unique_ptr<Stage> inner_;
  SourceStage& source_;
  ShardSpec shard_;
};

}  // namespace

ShardSpec parse_shard(const std::string& text, const std::string& where) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) throw Error(where, "'" + text + "' is not I/N", "e.g. --shard 0/4");
  ShardSpec s;
  s.index = parse_count(text.substr(0, slash), where, "a shard index");
  s.count = parse_count(text.substr(slash + 1), where, "a shard count");
  if (s.count == 0 || s.index >= s.count)
    throw Error(where, "shard " + text + " does not exist", "use I/N with 0 <= I < N, e.g. 0/4");
  return s;
}

std::size_t parse_shard_count(const std::string& text, const std::string& where) {
  const std::size_t n = parse_count(text, where, "a shard count");
  if (n == 0) throw Error(where, "the shard count must be at least 1", "e.g. --shards 4");
  return n;
}

std::size_t shard_of_row(const Batch& batch, std::size_t row, std::size_t count) {
  std::string article;
  if (auto it = batch.ints.find("article_id"); it != batch.ints.end()) {
    article = std::to_string(it->second[row]);
  } else {
    const std::string& id = batch.ids[row];
    article = id.substr(0, id.find('#'));
  }
  return static_cast<std::size_t>(fnv1a64(article) % count);
}

std::unique_ptr<Stage> shard_filtered_source(std::unique_ptr<Stage> source, ShardSpec shard) {
  return std::make_unique<ShardFilteredSource>(std::move(source), shard);
}

std::vector<bool> shardable_stages(const std::vector<PlannedStage>& stages) {
  std::vector<bool> shardable(stages.size(), false);
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const auto kind = stages[i].spec->info->kind;
    if (kind == StageKind::Source) {
      shardable[i] = true;
    } else if (kind == StageKind::Map) {
      bool all = true;
      for (auto in : stages[i].inputs) all = all && shardable[in];
      shardable[i] = all;
    }
  }
  return shardable;
}

std::filesystem::path shard_store_dir(const std::filesystem::path& store_root, ShardSpec shard) {
  return store_root / "shards" / (std::to_string(shard.index) + "-of-" + std::to_string(shard.count));
}

std::vector<std::optional<std::string>> ReadOnlyItemCache::get_many(const std::string& ns,
                                                                    const std::vector<std::string>& keys) {
  return inner_.get_many(ns, keys);
}

void ReadOnlyItemCache::put_many(const std::string& ns,
                                 const std::vector<std::pair<std::string, std::string>>& entries) {
  if (entries.empty()) return;
  throw Error("item cache '" + ns + "'", std::to_string(entries.size()) + " item(s) were computed during the merge "
              "(first key " + entries.front().first.substr(0, 16) + "...), so a shard's output is incomplete",
              "rerun the shard holding that item (lvmflow merge names shards without committed output), "
              "and check that the shards ran with the same pipeline file and --set values");
}

}  // namespace lvmflow
