// Store::import_item_cache and Store::import_runs: `lvmflow merge` brings the shards' stores
// into the main store with ATTACH and INSERT ... SELECT, one transaction per store.
#include <sqlite3.h>

#include "pipeline/error.hpp"
#include "pipeline/store.hpp"

namespace lvmflow {

namespace fs = std::filesystem;

namespace {

// One statement with int64 / text parameters, stepped to the end.
class Sql {
 public:
  Sql(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      throw Error("store import", std::string("SQL error: ") + sqlite3_errmsg(db) + " in: " + sql);
  }
  ~Sql() { sqlite3_finalize(stmt_); }
  Sql& bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); return *this; }
  Sql& bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // Steps once; true while a row came back.
  bool row() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) throw Error("store import", std::string("SQL error: ") + sqlite3_errmsg(db_));
    return false;
  }
  std::int64_t column(int i) { return sqlite3_column_int64(stmt_, i); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// ATTACHes another store's database as `other` for the lifetime of the object.
class Attached {
 public:
  Attached(sqlite3* db, const fs::path& other_root) : db_(db) {
    const fs::path file = other_root / "lvmflow.db";
    if (!fs::exists(file)) throw Error(other_root.string(), "no lvmflow store here", "run the shard first");
    Sql(db, "ATTACH DATABASE ? AS other").bind(1, file.string()).row();
  }
  ~Attached() { sqlite3_exec(db_, "DETACH DATABASE other", nullptr, nullptr, nullptr); }

 private:
  sqlite3* db_;
};

}  // namespace

std::int64_t Store::import_item_cache(const fs::path& other_root) {
  std::lock_guard lock(mutex_);
  Attached attached(db_, other_root);
  exec("BEGIN IMMEDIATE");
  try {
    Sql(db_, "INSERT OR IGNORE INTO main.item_cache(ns, key, value) SELECT ns, key, value FROM other.item_cache").row();
    const std::int64_t added = sqlite3_changes(db_);
    exec("COMMIT");
    return added;
  } catch (...) {
    exec("ROLLBACK");
    throw;
  }
}

std::vector<std::int64_t> Store::import_runs(const fs::path& other_root, const std::string& label) {
  std::lock_guard lock(mutex_);
  Attached attached(db_, other_root);
  std::vector<std::int64_t> source_runs, imported;
  {
    Sql list(db_, "SELECT id FROM other.runs WHERE status != 'running' ORDER BY id");
    while (list.row()) source_runs.push_back(list.column(0));
  }
  exec("BEGIN IMMEDIATE");
  try {
    for (const std::int64_t from : source_runs) {
      // " [shard 1/4 run 2 on node17]": which shard, which of its runs, which host.
      const std::string note = " [" + label + " run " + std::to_string(from) + " on ";
      Sql seen(db_, "SELECT COUNT(*) FROM main.runs WHERE instr(args, ?) > 0");
      seen.bind(1, note);
      if (seen.row() && seen.column(0) > 0) continue;
      Sql(db_,
          "INSERT INTO main.runs(pipeline, spec_file, args, status, error, started_ms, finished_ms, pid, host) "
          "SELECT pipeline, spec_file, ltrim(args || ? || host || ']'), status, error, started_ms, finished_ms, pid, "
          "host FROM other.runs WHERE id = ?")
          .bind(1, note).bind(2, from).row();
      const std::int64_t to = sqlite3_last_insert_rowid(db_);
      Sql(db_,
          "INSERT INTO main.stage_runs(run_id, stage, type, key, action, status, error, started_ns, finished_ns, "
          "items_in, items_out, batches) SELECT ?, stage, type, key, action, status, error, started_ns, finished_ns, "
          "items_in, items_out, batches FROM other.stage_runs WHERE run_id = ? ORDER BY id")
          .bind(1, to).bind(2, from).row();
      Sql(db_,
          "INSERT INTO main.spans(run_id, stage, seq, start_ns, end_ns, queued_ns, items, thread) "
          "SELECT ?, stage, seq, start_ns, end_ns, queued_ns, items, thread FROM other.spans WHERE run_id = ?")
          .bind(1, to).bind(2, from).row();
      Sql(db_,
          "INSERT INTO main.metrics(run_id, stage, name, label, step, value, text) "
          "SELECT ?, stage, name, label, step, value, text FROM other.metrics WHERE run_id = ?")
          .bind(1, to).bind(2, from).row();
      Sql(db_,
          "INSERT INTO main.stage_inputs(run_id, stage, input, slot) "
          "SELECT ?, stage, input, slot FROM other.stage_inputs WHERE run_id = ?")
          .bind(1, to).bind(2, from).row();
      imported.push_back(to);
    }
    exec("COMMIT");
  } catch (...) {
    exec("ROLLBACK");
    throw;
  }
  return imported;
}

}  // namespace lvmflow
