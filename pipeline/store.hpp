#pragma once
// The run store: one SQLite database (WAL) plus an artifact folder. Holds runs, stage runs,
// per-batch spans, cache entries (with a checksum of every artifact file), metrics, chunks and
// the item-level cache. Thread-safe: one connection guarded by a mutex; a busy timeout and
// BEGIN IMMEDIATE let two processes share a store without "database is locked" failures.
// Schema: docs/store.md.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/artifact_check.hpp"
#include "pipeline/batch.hpp"
#include "pipeline/stage.hpp"

struct sqlite3;

namespace lvmflow {

// 2: per-file artifact checksums, artifact paths relative to the store; 3: batches.bin records
// may refer to the artifact's vectors.npy instead of holding vectors (batch.hpp). Older stores
// are migrated on open (store.cpp, kMigrations); a newer one is refused.
inline constexpr int kStoreSchemaVersion = 3;

// Read-only: for commands that only look (runs, show, plan, profile, verify, ...). Works on a
// store the user cannot write to; nothing is created, migrated or cached.
enum class StoreMode { ReadWrite, ReadOnly };

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
  std::string key, stage_type;
  std::filesystem::path artifact;   // absolute; the table keeps it relative to the store
  std::int64_t run_id = 0, items = 0, batches = 0, bytes = 0, created_ms = 0;
};

// What a check of one committed artifact found.
struct ArtifactStatus {
  std::string key;
  bool recorded = true;                // false: committed before checksums were recorded
  std::vector<std::string> problems;   // empty: intact
  bool ok() const { return problems.empty(); }
};

// A resume folder this process holds (an flock on its `.lock` file) until it is destroyed.
class ResumeFolder {
 public:
  ResumeFolder(std::filesystem::path path, int lock_fd, bool shared);
  ~ResumeFolder();
  ResumeFolder(const ResumeFolder&) = delete;
  ResumeFolder& operator=(const ResumeFolder&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // False when another live run holds the shared folder for the same id: this one is private
  // to the run and removed when the run lets go of it.
  bool shared() const { return shared_; }

 private:
  std::filesystem::path path_;
  int lock_fd_;
  bool shared_;
};

struct GcResult {
  std::int64_t removed = 0, bytes = 0;             // folders removed, bytes freed
  std::int64_t kept_resume = 0, kept_resume_bytes = 0;   // resume state kept for a re-run
};

class Store : public ItemCache {
 public:
  explicit Store(const std::filesystem::path& root, StoreMode mode = StoreMode::ReadWrite);
  ~Store() override;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::filesystem::path& root() const { return root_; }   // canonical (symlinks resolved)
  bool read_only() const { return mode_ == StoreMode::ReadOnly; }
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

  // Cache. commit_artifact fsyncs `staging`, records the size and XXH3 of each of its files,
  // and publishes it as artifact_path(key) together with the entry's rows (one transaction,
  // which also serializes commits between processes). If another run committed the same key
  // first, its artifact is kept and `staging` removed: both hold the same content by
  // construction. With `replace` (--force, or the stored copy was found damaged) the folder
  // is swapped in atomically and the old one deleted.
  std::optional<CacheEntry> find_cache(const std::string& key);
  void commit_artifact(const std::filesystem::path& staging, const CacheEntry& entry,
                       const std::vector<Batch>& chunk_batches, bool replace = false);
  // Checks a committed artifact's files against the checksums recorded at commit.
  ArtifactStatus verify_artifact(const std::string& key, VerifyDepth depth);
  std::vector<ArtifactFile> artifact_files(const std::string& key);
  std::vector<CacheEntry> cache_entries();
  // Stage names that produced each key, from the run history (for naming artifacts).
  std::map<std::string, std::set<std::string>> stage_names_by_key();
  // The resume folder for `id` (see StageContext::resume_dir), locked for this process.
  std::unique_ptr<ResumeFolder> claim_resume_folder(const std::string& id);
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

  // Removes artifact folders that no cache entry points to and staging folders of dead
  // processes. Resume folders no live run holds are kept (a re-run continues from them)
  // unless `all`.
  GcResult gc(bool all = false);

  // Records of another store brought into this one, for `lvmflow merge` (store_import.cpp).
  // import_item_cache adds the rows this store lacks and returns how many; import_runs copies
  // the finished runs not imported before (matched by `label` in their args) with their stage
  // runs, spans, metrics and edges under new ids, appending " [label run N on HOST]" to their
  // args.
  // Returns the new run ids.
  std::int64_t import_item_cache(const std::filesystem::path& other_root);
  // import_artifacts brings the other store's committed artifacts this store lacks (hard
  // links, with their cache entries and checksums): its item-cache rows are row references
  // into them (stages/encode/vector_refs.hpp). Returns how many.
  std::int64_t import_artifacts(const std::filesystem::path& other_root);
  std::vector<std::int64_t> import_runs(const std::filesystem::path& other_root, const std::string& label);

  // ItemCache.
  std::vector<std::optional<std::string>> get_many(const std::string& ns,
                                                   const std::vector<std::string>& keys) override;
  void put_many(const std::string& ns,
                const std::vector<std::pair<std::string, std::string>>& entries) override;

 private:
  void open_read_write(const std::filesystem::path& db_path);
  void open_read_only(const std::filesystem::path& db_path);
  void exec(const char* sql);
  void migrate();
  std::filesystem::path root_;
  StoreMode mode_;
  int schema_version_ = kStoreSchemaVersion;
  sqlite3* db_ = nullptr;
  std::recursive_mutex mutex_;
};

std::int64_t now_ms();

}  // namespace lvmflow
