#pragma once
// The store's SQLite helpers, shared by store.cpp and store_import.cpp (internal to the store).
#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "pipeline/error.hpp"

namespace lvmflow::store_sql {

// What to tell the user about a failed SQLite call, by its error code.
inline std::string sql_hint(sqlite3* db) {
  switch (sqlite3_errcode(db)) {
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
      return "the store is read-only: runs, show, plan, profile and verify work on it; run, gc need write access";
    case SQLITE_FULL:
    case SQLITE_IOERR:
      return "is the disk full?";
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return "the database is damaged: move lvmflow.db aside to start a new store";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "another lvmflow process holds the store's write lock";
    default:
      return "is the disk full or the store folder read-only?";
  }
}

// Thin RAII wrapper over a prepared statement; binds by position starting at 1.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      throw Error("store", std::string("SQL error: ") + sqlite3_errmsg(db) + " in: " + sql);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement& bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); return *this; }
  Statement& bind(int i, double v) { sqlite3_bind_double(stmt_, i, v); return *this; }
  Statement& bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind_blob(int i, const std::string& v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // True while rows come back.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw Error("store", std::string("SQL error: ") + sqlite3_errmsg(db_), sql_hint(db_));
  }
  void run() {
    step();
    reset();
  }
  // Ready for the next bindings, without stepping again.
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::int64_t i64(int c) const { return sqlite3_column_int64(stmt_, c); }
  double f64(int c) const { return sqlite3_column_double(stmt_, c); }
  std::string text(int c) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c))) : std::string();
  }
  std::string blob(int c) const {
    auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c))) : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE takes the write lock up front, so the busy timeout applies; a deferred
// transaction that upgrades to a writer can fail at once with SQLITE_BUSY under WAL.
class WriteTransaction {
 public:
  explicit WriteTransaction(sqlite3* db) : db_(db) { exec("BEGIN IMMEDIATE"); }
  ~WriteTransaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    exec("COMMIT");
    done_ = true;
  }

 private:
  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      throw Error("store", "SQL error: " + msg, sql_hint(db_));
    }
  }
  sqlite3* db_;
  bool done_ = false;
};

}  // namespace lvmflow::store_sql
