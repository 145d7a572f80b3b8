// Store::import_item_cache and Store::import_runs: `lvmflow merge` brings the shards' stores
// into the main store with ATTACH and INSERT ... SELECT, one transaction per store.
#include <sqlite3.h>

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
