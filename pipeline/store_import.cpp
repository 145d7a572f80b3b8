// Store::import_item_cache and Store::import_runs: `lvmflow merge` brings the shards' stores
// into the main store with ATTACH and INSERT ... SELECT, one transaction per store.
#include <sqlite3.h>

#include <filesystem>

#include "pipeline/error.hpp"
#include "pipeline/sqlite_statement.hpp"
#include "pipeline/store.hpp"

namespace lvmflow {

namespace fs = std::filesystem;
using store_sql::Statement;
using store_sql::WriteTransaction;

namespace {

// ATTACHes another store's database as `other` for the lifetime of the object.
class Attached {
 public:
  Attached(sqlite3* db, const fs::path& other_root) : db_(db) {
    const fs::path file = other_root / "lvmflow.db";
    if (!fs::exists(file)) throw Error(other_root.string(), "no lvmflow store here", "run the shard first");
    Statement(db, "ATTACH DATABASE ? AS other").bind(1, file.string()).run();
  }
  ~Attached() { sqlite3_exec(db_, "DETACH DATABASE other", nullptr, nullptr, nullptr); }

 private:
  sqlite3* db_;
};

// The tables with one set of rows per run, and their columns besides run_id (docs/store.md).
constexpr std::pair<const char*, const char*> kPerRunTables[] = {
    {"stage_runs", "stage, type, key, action, status, error, started_ns, finished_ns, items_in, items_out, batches"},
    {"spans", "stage, seq, start_ns, end_ns, queued_ns, items, thread"},
    {"metrics", "stage, name, label, step, value, text"},
    {"stage_inputs", "stage, input, slot"},
};

}  // namespace

std::int64_t Store::import_artifacts(const fs::path& other_root) {
  std::lock_guard lock(mutex_);
  Attached attached(db_, other_root);
  std::vector<std::string> keys;
  {
    Statement list(db_, "SELECT key FROM other.cache_entries WHERE key NOT IN (SELECT key FROM main.cache_entries)");
    while (list.step()) keys.push_back(list.text(0));
  }
  std::vector<std::string> imported;
  for (const auto& key : keys) {
    const fs::path target = artifact_path(key);
    const fs::path source = other_root / target.lexically_relative(root_);
    if (!fs::is_directory(source)) continue;
    // Hard links: no byte is copied when the shard stores live under this store (the layout
    // `run --shard` uses); another file system gets a copy.
    const fs::path staging = make_staging_dir(key);
    for (const auto& e : fs::recursive_directory_iterator(source)) {
      const fs::path to = staging / e.path().lexically_relative(source);
      if (e.is_directory()) {
        fs::create_directories(to);
        continue;
      }
      std::error_code ec;
      fs::create_hard_link(e.path(), to, ec);
      if (ec) fs::copy_file(e.path(), to);
    }
    fs::create_directories(target.parent_path());
    std::error_code ec;
    fs::rename(staging, target, ec);
    if (ec) {   // already there (an earlier, interrupted merge): keep it
      fs::remove_all(staging, ec);
      if (!fs::is_directory(target)) continue;
    }
    imported.push_back(key);
  }
  WriteTransaction tx(db_);
  for (const auto& key : imported) {
    // The artifact path is relative to the store (as every row's); run_id 0: made by no run of
    // this store (the shard's runs are imported with their own ids by import_runs).
    Statement(db_,
              "INSERT OR IGNORE INTO main.cache_entries(key, stage_type, artifact, run_id, items, batches, bytes, "
              "created_ms) SELECT key, stage_type, ?, 0, items, batches, bytes, created_ms FROM other.cache_entries "
              "WHERE key = ?")
        .bind(1, artifact_path(key).lexically_relative(root_).string()).bind(2, key).run();
    Statement(db_,
              "INSERT OR IGNORE INTO main.artifact_files(key, path, size, xxh3) "
              "SELECT key, path, size, xxh3 FROM other.artifact_files WHERE key = ?")
        .bind(1, key).run();
  }
  tx.commit();
  return static_cast<std::int64_t>(imported.size());
}

std::int64_t Store::import_item_cache(const fs::path& other_root) {
  std::lock_guard lock(mutex_);
  Attached attached(db_, other_root);
  WriteTransaction tx(db_);
  Statement(db_, "INSERT OR IGNORE INTO main.item_cache(ns, key, value) SELECT ns, key, value FROM other.item_cache").run();
  const std::int64_t added = sqlite3_changes(db_);
  tx.commit();
  return added;
}

std::vector<std::int64_t> Store::import_runs(const fs::path& other_root, const std::string& label) {
  std::lock_guard lock(mutex_);
  Attached attached(db_, other_root);
  std::vector<std::int64_t> source_runs, imported;
  {
    Statement list(db_, "SELECT id FROM other.runs WHERE status != 'running' ORDER BY id");
    while (list.step()) source_runs.push_back(list.i64(0));
  }
  WriteTransaction tx(db_);
  for (const std::int64_t from : source_runs) {
    // " [shard 1/4 run 2 on node17]": which shard, which of its runs, which host.
    const std::string note = " [" + label + " run " + std::to_string(from) + " on ";
    Statement seen(db_, "SELECT COUNT(*) FROM main.runs WHERE instr(args, ?) > 0");
    seen.bind(1, note);
    if (seen.step() && seen.i64(0) > 0) continue;
    Statement(db_,
              "INSERT INTO main.runs(pipeline, spec_file, args, status, error, started_ms, finished_ms, pid, host) "
              "SELECT pipeline, spec_file, ltrim(args || ? || host || ']'), status, error, started_ms, finished_ms, "
              "pid, host FROM other.runs WHERE id = ?")
        .bind(1, note).bind(2, from).run();
    const std::int64_t to = sqlite3_last_insert_rowid(db_);
    for (const auto& [table, columns] : kPerRunTables) {
      const std::string sql = std::string("INSERT INTO main.") + table + "(run_id, " + columns + ") SELECT ?, " +
                              columns + " FROM other." + table + " WHERE run_id = ? ORDER BY rowid";
      Statement(db_, sql.c_str()).bind(1, to).bind(2, from).run();
    }
    imported.push_back(to);
  }
  tx.commit();
  return imported;
}

}  // namespace lvmflow
