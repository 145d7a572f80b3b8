#pragma once
// The run store: one SQLite database (WAL) plus an artifact folder. Holds runs, stage runs,
// per-batch spans, cache entries, metrics, chunks and the item-level cache. Thread-safe: one
// connection guarded by a mutex; a busy timeout and BEGIN IMMEDIATE let two processes share a
// store without "database is locked" failures. Schema: docs/store.md.
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/batch.hpp"
#include "pipeline/stage.hpp"

struct sqlite3;

namespace lvmflow {

// 2: batches.bin records may refer to the artifact's vectors.npy instead of holding vectors
// (batch.hpp); a store of version 1 is migrated on open (see Store::migrate_v1_to_v2).
inline constexpr int kStoreSchemaVersion = 2;

struct Span {
  std::string stage;
  std::uint64_t seq = 0;
  std::int64_t start_ns = 0;    // since the run started
  std::int64_t end_ns = 0;
  std::int64_t queued_ns = 0;   // time the batch waited before the stage took it
  std::int64_t items = 0;
  std::int64_t thread = 0;
};

// One input edge of the run's plan: `stage` reads `input` at input position `slot`.
struct StageEdge {
  std::string stage, input;
  std::int64_t slot = 0;
};

struct RunRecord {
  std::int64_t id = 0;
  std::string pipeline, spec_file, status, error, args;
  std::int64_t started_ms = 0, finished_ms = 0, pid = 0;
  bool process_alive = false;   // for status "running": is its process still there?
};

struct StageRunRecord {
  std::int64_t id = 0, run_id = 0;
  std::string stage, type, key, action, status, error;
  std::int64_t started_ns = 0, finished_ns = 0, items_in = 0, items_out = 0, batches = 0;
};

struct MetricRecord {
  std::string stage, name, label, text;
  std::int64_t step = -1;
  double value = 0;
};

struct CacheEntry {
  std::string key, stage_type, artifact;
  std::int64_t run_id = 0, items = 0, batches = 0, bytes = 0, created_ms = 0;
};

class Store : public ItemCache {
 public:
  explicit Store(const std::filesystem::path& root);
  ~Store() override;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path artifact_path(const std::string& key) const;
  // A fresh private folder for a stage to write into before commit.
  std::filesystem::path make_staging_dir(const std::string& key);

  // Runs and stage runs.
  std::int64_t begin_run(const std::string& pipeline, const std::string& spec_file,
                         const std::string& args);
  void finish_run(std::int64_t run, const std::string& status, const std::string& error);
  std::int64_t begin_stage_run(std::int64_t run, const std::string& stage, const std::string& type,
                               const std::string& key, const std::string& action);
  void mark_stage_running(std::int64_t stage_run);
  void finish_stage_run(std::int64_t stage_run, const std::string& status, std::int64_t started_ns,
                        std::int64_t finished_ns, std::int64_t items_in, std::int64_t items_out,
                        std::int64_t batches, const std::string& error);
  void add_spans(std::int64_t run, const std::vector<Span>& spans);
  void add_metric(std::int64_t run, const MetricRecord& m);
  // The plan's edges, written at run start so reports can draw the pipeline's DAG.
  void add_stage_edges(std::int64_t run, const std::vector<StageEdge>& edges);

  // Cache. commit_artifact fsyncs `staging`, renames it to artifact_path(key) and records the
  // entry (with chunk rows, in one transaction). If another run committed the same key first,
  // its artifact is kept and `staging` is removed: both hold the same content by construction.
  std::optional<CacheEntry> find_cache(const std::string& key);
  void commit_artifact(const std::filesystem::path& staging, const CacheEntry& entry,
                       const std::vector<Batch>& chunk_batches);
  // File fingerprint (SHA-256 of the content), re-hashed only when size or mtime changed.
  std::string file_fingerprint(const std::filesystem::path& file);

  // Read side for the CLI.
  std::vector<RunRecord> runs(int limit);
  std::optional<RunRecord> run(std::int64_t id);
  std::int64_t latest_run_id();
  std::vector<StageRunRecord> stage_runs(std::int64_t run);
  std::vector<Span> spans(std::int64_t run);
  std::vector<MetricRecord> metrics(std::int64_t run);
  std::vector<StageEdge> stage_edges(std::int64_t run);   // empty for runs of older lvmflow
  std::int64_t chunk_count(const std::string& key);

  // Removes artifact folders (and leftover staging folders of dead runs) that no cache entry
  // points to. Returns {folders removed, bytes freed}.
  std::pair<std::int64_t, std::int64_t> gc();

  // ItemCache.
  std::vector<std::optional<std::string>> get_many(const std::string& ns,
                                                   const std::vector<std::string>& keys) override;
  void put_many(const std::string& ns,
                const std::vector<std::pair<std::string, std::string>>& entries) override;

 private:
  void exec(const char* sql);
  void migrate();
  void migrate_v1_to_v2();
  std::filesystem::path root_;
  sqlite3* db_ = nullptr;
  std::recursive_mutex mutex_;
};

std::int64_t now_ms();

}  // namespace lvmflow
