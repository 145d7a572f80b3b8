#include "pipeline/store.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <random>
#include <set>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"

namespace lvmflow {

namespace fs = std::filesystem;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

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
    throw Error("store", std::string("SQL error: ") + sqlite3_errmsg(db_),
                "is the disk full or the store folder read-only?");
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
      throw Error("store", "SQL error: " + msg);
    }
  }
  sqlite3* db_;
  bool done_ = false;
};

void fsync_path(const fs::path& p, bool directory) {
  int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void fsync_tree(const fs::path& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) fsync_path(e.path(), false);
    else if (e.is_directory()) fsync_path(e.path(), true);
  }
  fsync_path(dir, true);
}

std::int64_t tree_bytes(const fs::path& dir) {
  std::int64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file(ec)) total += static_cast<std::int64_t>(e.file_size(ec));
  return total;
}

bool process_alive(std::int64_t pid) {
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

constexpr const char* kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  pipeline TEXT NOT NULL, spec_file TEXT NOT NULL, args TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL,             -- running | succeeded | failed | cancelled
  error TEXT NOT NULL DEFAULT '',
  started_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL DEFAULT 0,
  pid INTEGER NOT NULL, host TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS stage_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  stage TEXT NOT NULL, type TEXT NOT NULL, key TEXT NOT NULL,
  action TEXT NOT NULL,             -- run | cached | replay | skipped
  status TEXT NOT NULL,             -- pending | running | done | failed | cancelled
  error TEXT NOT NULL DEFAULT '',
  started_ns INTEGER NOT NULL DEFAULT 0, finished_ns INTEGER NOT NULL DEFAULT 0,
  items_in INTEGER NOT NULL DEFAULT 0, items_out INTEGER NOT NULL DEFAULT 0,
  batches INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS stage_runs_by_run ON stage_runs(run_id);
CREATE TABLE IF NOT EXISTS spans (
  run_id INTEGER NOT NULL, stage TEXT NOT NULL, seq INTEGER NOT NULL,
  start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, queued_ns INTEGER NOT NULL,
  items INTEGER NOT NULL, thread INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS spans_by_run ON spans(run_id, stage);
CREATE TABLE IF NOT EXISTS cache_entries (
  key TEXT PRIMARY KEY, stage_type TEXT NOT NULL, artifact TEXT NOT NULL,
  run_id INTEGER NOT NULL, items INTEGER NOT NULL, batches INTEGER NOT NULL,
  bytes INTEGER NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (
  run_id INTEGER NOT NULL, stage TEXT NOT NULL, name TEXT NOT NULL, label TEXT NOT NULL DEFAULT '',
  step INTEGER NOT NULL DEFAULT -1, value REAL, text TEXT);
CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics(run_id, stage);
CREATE TABLE IF NOT EXISTS stage_inputs (
  run_id INTEGER NOT NULL, stage TEXT NOT NULL, input TEXT NOT NULL, slot INTEGER NOT NULL,
  PRIMARY KEY (run_id, stage, slot));
CREATE TABLE IF NOT EXISTS chunks (
  key TEXT NOT NULL, position INTEGER NOT NULL, chunk_id TEXT NOT NULL,
  article_id INTEGER NOT NULL, title TEXT NOT NULL, section TEXT NOT NULL,
  chunk_index INTEGER NOT NULL, text TEXT NOT NULL, hash TEXT NOT NULL,
  PRIMARY KEY (key, position)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS item_cache (
  ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS file_fingerprints (
  path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL);
)SQL";

}  // namespace

Store::Store(const fs::path& root) : root_(fs::absolute(root)) {
  std::error_code ec;
  fs::create_directories(root_ / "artifacts", ec);
  fs::create_directories(root_ / "staging", ec);
  if (ec) throw Error(root_.string(), "cannot create the store folder: " + ec.message(),
                      "choose a writable `store:` location");
  fs::path db_path = root_ / "lvmflow.db";
  if (sqlite3_open_v2(db_path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw Error(db_path.string(), "cannot open the store database: " + msg);
  }
  // Long busy timeout: a second run waits for the first one's short write transactions.
  sqlite3_busy_timeout(db_, 120000);
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=NORMAL");
  exec("PRAGMA foreign_keys=ON");
  migrate();
}

Store::~Store() { sqlite3_close(db_); }

void Store::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    throw Error((root_ / "lvmflow.db").string(), "SQL error: " + msg,
                "is this an lvmflow store? a damaged database can be moved aside");
  }
}

void Store::migrate() {
  std::lock_guard lock(mutex_);
  WriteTransaction tx(db_);
  exec(kSchema);
  Statement get(db_, "SELECT value FROM meta WHERE key='schema_version'");
  if (get.step()) {
    int version = std::stoi(get.text(0));
    if (version > kStoreSchemaVersion)
      throw Error(root_.string(), "store schema version " + std::to_string(version) +
                                      " is newer than this lvmflow (" +
                                      std::to_string(kStoreSchemaVersion) + ")",
                  "upgrade lvmflow or use another store");
    if (version < 2) migrate_v1_to_v2();
  } else {
    Statement(db_, "INSERT INTO meta(key, value) VALUES('schema_version', ?)")
        .bind(1, std::to_string(kStoreSchemaVersion))
        .run();
  }
  tx.commit();
}

// Version 1 stores hold batches.bin records of format 1 (vectors inline), which read_batch
// still reads as written, so their artifacts stay valid; stages whose output layout changed
// (seq.window, lvm.*) bumped their implementation version, so their old artifacts are never
// looked up. What changes is the version mark, so an older lvmflow refuses this store instead
// of failing on records it cannot read. Runs inside migrate()'s transaction.
void Store::migrate_v1_to_v2() {
  Statement(db_, "UPDATE meta SET value='2' WHERE key='schema_version'").run();
}

fs::path Store::artifact_path(const std::string& key) const {
  return root_ / "artifacts" / key.substr(0, 2) / key;
}

fs::path Store::make_staging_dir(const std::string& key) {
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard lock(mutex_);
  fs::path dir = root_ / "staging" /
                 (key.substr(0, 16) + "-" + std::to_string(::getpid()) + "-" + std::to_string(rng() % 1000000000));
  fs::create_directories(dir);
  return dir;
}

std::int64_t Store::begin_run(const std::string& pipeline, const std::string& spec_file,
                              const std::string& args) {
  std::lock_guard lock(mutex_);
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  Statement st(db_,
               "INSERT INTO runs(pipeline, spec_file, args, status, started_ms, pid, host) "
               "VALUES(?, ?, ?, 'running', ?, ?, ?)");
  st.bind(1, pipeline).bind(2, spec_file).bind(3, args).bind(4, now_ms())
      .bind(5, static_cast<std::int64_t>(::getpid())).bind(6, std::string(host));
  st.run();
  return sqlite3_last_insert_rowid(db_);
}

void Store::finish_run(std::int64_t run, const std::string& status, const std::string& error) {
  std::lock_guard lock(mutex_);
  Statement(db_, "UPDATE runs SET status=?, error=?, finished_ms=? WHERE id=?")
      .bind(1, status).bind(2, error).bind(3, now_ms()).bind(4, run).run();
}

std::int64_t Store::begin_stage_run(std::int64_t run, const std::string& stage,
                                    const std::string& type, const std::string& key,
                                    const std::string& action) {
  std::lock_guard lock(mutex_);
  Statement(db_,
            "INSERT INTO stage_runs(run_id, stage, type, key, action, status) VALUES(?,?,?,?,?,'pending')")
      .bind(1, run).bind(2, stage).bind(3, type).bind(4, key).bind(5, action).run();
  return sqlite3_last_insert_rowid(db_);
}

void Store::mark_stage_running(std::int64_t id) {
  std::lock_guard lock(mutex_);
  Statement(db_, "UPDATE stage_runs SET status='running' WHERE id=? AND status='pending'").bind(1, id).run();
}

void Store::finish_stage_run(std::int64_t id, const std::string& status, std::int64_t started_ns,
                             std::int64_t finished_ns, std::int64_t items_in,
                             std::int64_t items_out, std::int64_t batches,
                             const std::string& error) {
  std::lock_guard lock(mutex_);
  Statement(db_,
            "UPDATE stage_runs SET status=?, started_ns=?, finished_ns=?, items_in=?, items_out=?, "
            "batches=?, error=? WHERE id=?")
      .bind(1, status).bind(2, started_ns).bind(3, finished_ns).bind(4, items_in)
      .bind(5, items_out).bind(6, batches).bind(7, error).bind(8, id).run();
}

void Store::add_spans(std::int64_t run, const std::vector<Span>& spans) {
  if (spans.empty()) return;
  std::lock_guard lock(mutex_);
  WriteTransaction tx(db_);
  Statement st(db_,
               "INSERT INTO spans(run_id, stage, seq, start_ns, end_ns, queued_ns, items, thread) "
               "VALUES(?,?,?,?,?,?,?,?)");
  for (const auto& s : spans)
    st.bind(1, run).bind(2, s.stage).bind(3, static_cast<std::int64_t>(s.seq)).bind(4, s.start_ns)
        .bind(5, s.end_ns).bind(6, s.queued_ns).bind(7, s.items).bind(8, s.thread).run();
  tx.commit();
}

void Store::add_metric(std::int64_t run, const MetricRecord& m) {
  std::lock_guard lock(mutex_);
  Statement st(db_, "INSERT INTO metrics(run_id, stage, name, label, step, value, text) VALUES(?,?,?,?,?,?,?)");
  st.bind(1, run).bind(2, m.stage).bind(3, m.name).bind(4, m.label).bind(5, m.step);
  if (m.text.empty()) st.bind(6, m.value);
  st.bind(7, m.text);
  st.run();
}

void Store::add_stage_edges(std::int64_t run, const std::vector<StageEdge>& edges) {
  if (edges.empty()) return;
  std::lock_guard lock(mutex_);
  WriteTransaction tx(db_);
  Statement st(db_, "INSERT OR REPLACE INTO stage_inputs(run_id, stage, input, slot) VALUES(?,?,?,?)");
  for (const auto& e : edges) st.bind(1, run).bind(2, e.stage).bind(3, e.input).bind(4, e.slot).run();
  tx.commit();
}

std::optional<CacheEntry> Store::find_cache(const std::string& key) {
  std::lock_guard lock(mutex_);
  Statement st(db_,
               "SELECT key, stage_type, artifact, run_id, items, batches, bytes, created_ms "
               "FROM cache_entries WHERE key=?");
  st.bind(1, key);
  if (!st.step()) return std::nullopt;
  CacheEntry e{st.text(0), st.text(1), st.text(2), st.i64(3), st.i64(4), st.i64(5), st.i64(6), st.i64(7)};
  // An entry whose folder vanished (deleted by hand) is not a usable cache hit.
  if (!fs::exists(fs::path(e.artifact) / "batches.bin")) return std::nullopt;
  return e;
}

void Store::commit_artifact(const fs::path& staging, const CacheEntry& entry,
                            const std::vector<Batch>& chunk_batches) {
  fs::path final_dir = artifact_path(entry.key);
  fs::create_directories(final_dir.parent_path());
  fsync_tree(staging);
  std::error_code ec;
  fs::rename(staging, final_dir, ec);
  if (ec) {
    // The target exists: another run (or a run killed after its rename) committed this key.
    // Renames only ever publish fully synced folders, so that copy is complete.
    if (!fs::exists(final_dir / "batches.bin"))
      throw Error(final_dir.string(), "cannot commit artifact: " + ec.message());
    fs::remove_all(staging, ec);
  }
  fsync_path(final_dir.parent_path(), true);

  CacheEntry e = entry;
  e.artifact = final_dir.string();
  e.bytes = tree_bytes(final_dir);
  e.created_ms = now_ms();
  std::lock_guard lock(mutex_);
  WriteTransaction tx(db_);
  Statement(db_,
            "INSERT OR IGNORE INTO cache_entries(key, stage_type, artifact, run_id, items, batches, "
            "bytes, created_ms) VALUES(?,?,?,?,?,?,?,?)")
      .bind(1, e.key).bind(2, e.stage_type).bind(3, e.artifact).bind(4, e.run_id).bind(5, e.items)
      .bind(6, e.batches).bind(7, e.bytes).bind(8, e.created_ms).run();
  Statement chunk(db_,
                  "INSERT OR IGNORE INTO chunks(key, position, chunk_id, article_id, title, section, "
                  "chunk_index, text, hash) VALUES(?,?,?,?,?,?,?,?,?)");
  std::int64_t position = 0;
  for (const auto& b : chunk_batches) {
    const auto& article = b.int_column("article_id");
    const auto& index = b.int_column("position");
    const auto& title = b.text_column("title");
    const auto& section = b.text_column("section");
    const auto& text = b.text_column("text");
    const auto& hash = b.text_column("hash");
    for (std::size_t r = 0; r < b.rows(); ++r)
      chunk.bind(1, e.key).bind(2, position++).bind(3, b.ids[r]).bind(4, article[r])
          .bind(5, title[r]).bind(6, section[r]).bind(7, index[r]).bind(8, text[r])
          .bind(9, hash[r]).run();
  }
  tx.commit();
}

std::string Store::file_fingerprint(const fs::path& file) {
  std::error_code ec;
  auto size = static_cast<std::int64_t>(fs::file_size(file, ec));
  if (ec) throw Error(file.string(), "cannot read input file: " + ec.message(),
                      "check the path in the stage's params");
  auto mtime = static_cast<std::int64_t>(fs::last_write_time(file, ec).time_since_epoch().count());
  std::string path = fs::absolute(file).lexically_normal().string();
  {
    std::lock_guard lock(mutex_);
    Statement st(db_, "SELECT size, mtime_ns, sha256 FROM file_fingerprints WHERE path=?");
    st.bind(1, path);
    if (st.step() && st.i64(0) == size && st.i64(1) == mtime) return st.text(2);
  }
  std::string sha = sha256_file(file);
  std::lock_guard lock(mutex_);
  Statement(db_, "INSERT OR REPLACE INTO file_fingerprints(path, size, mtime_ns, sha256) VALUES(?,?,?,?)")
      .bind(1, path).bind(2, size).bind(3, mtime).bind(4, sha).run();
  return sha;
}

namespace {
// Every row of a query with one integer parameter (a run id, a limit), converted by `read`.
template <class Read>
auto query_rows(sqlite3* db, const char* sql, std::int64_t param, Read read) {
  Statement st(db, sql);
  st.bind(1, param);
  std::vector<decltype(read(st))> out;
  while (st.step()) out.push_back(read(st));
  return out;
}

RunRecord read_run(Statement& st) {
  RunRecord r;
  r.id = st.i64(0);
  r.pipeline = st.text(1);
  r.spec_file = st.text(2);
  r.status = st.text(3);
  r.error = st.text(4);
  r.args = st.text(5);
  r.started_ms = st.i64(6);
  r.finished_ms = st.i64(7);
  r.pid = st.i64(8);
  r.process_alive = r.status == "running" && process_alive(r.pid);
  return r;
}
constexpr const char* kRunColumns =
    "SELECT id, pipeline, spec_file, status, error, args, started_ms, finished_ms, pid FROM runs ";
}  // namespace

std::vector<RunRecord> Store::runs(int limit) {
  std::lock_guard lock(mutex_);
  return query_rows(db_, (std::string(kRunColumns) + "ORDER BY id DESC LIMIT ?").c_str(), limit, read_run);
}

std::optional<RunRecord> Store::run(std::int64_t id) {
  std::lock_guard lock(mutex_);
  Statement st(db_, (std::string(kRunColumns) + "WHERE id=?").c_str());
  st.bind(1, id);
  if (!st.step()) return std::nullopt;
  return read_run(st);
}

std::int64_t Store::latest_run_id() {
  std::lock_guard lock(mutex_);
  Statement st(db_, "SELECT COALESCE(MAX(id), 0) FROM runs");
  st.step();
  return st.i64(0);
}

std::vector<StageRunRecord> Store::stage_runs(std::int64_t run) {
  std::lock_guard lock(mutex_);
  return query_rows(db_,
                    "SELECT id, run_id, stage, type, key, action, status, error, started_ns, finished_ns, "
                    "items_in, items_out, batches FROM stage_runs WHERE run_id=? ORDER BY id",
                    run, [](Statement& st) {
                      return StageRunRecord{st.i64(0), st.i64(1), st.text(2), st.text(3), st.text(4),
                                            st.text(5), st.text(6), st.text(7), st.i64(8), st.i64(9),
                                            st.i64(10), st.i64(11), st.i64(12)};
                    });
}

std::vector<Span> Store::spans(std::int64_t run) {
  std::lock_guard lock(mutex_);
  return query_rows(db_,
                    "SELECT stage, seq, start_ns, end_ns, queued_ns, items, thread FROM spans "
                    "WHERE run_id=? ORDER BY start_ns",
                    run, [](Statement& st) {
                      return Span{st.text(0), static_cast<std::uint64_t>(st.i64(1)), st.i64(2),
                                  st.i64(3), st.i64(4), st.i64(5), st.i64(6)};
                    });
}

std::vector<MetricRecord> Store::metrics(std::int64_t run) {
  std::lock_guard lock(mutex_);
  return query_rows(db_,
                    "SELECT stage, name, label, COALESCE(text, ''), step, COALESCE(value, 0) FROM metrics "
                    "WHERE run_id=? ORDER BY rowid",
                    run, [](Statement& st) {
                      return MetricRecord{st.text(0), st.text(1), st.text(2), st.text(3), st.i64(4), st.f64(5)};
                    });
}

std::vector<StageEdge> Store::stage_edges(std::int64_t run) {
  std::lock_guard lock(mutex_);
  return query_rows(db_, "SELECT stage, input, slot FROM stage_inputs WHERE run_id=? ORDER BY rowid", run,
                    [](Statement& st) { return StageEdge{st.text(0), st.text(1), st.i64(2)}; });
}

std::int64_t Store::chunk_count(const std::string& key) {
  std::lock_guard lock(mutex_);
  Statement st(db_, "SELECT COUNT(*) FROM chunks WHERE key=?");
  st.bind(1, key);
  st.step();
  return st.i64(0);
}

std::pair<std::int64_t, std::int64_t> Store::gc() {
  std::set<std::string> live;
  {
    std::lock_guard lock(mutex_);
    Statement st(db_, "SELECT artifact FROM cache_entries");
    while (st.step()) live.insert(fs::path(st.text(0)).lexically_normal().string());
  }
  std::int64_t removed = 0, bytes = 0;
  std::error_code ec;
  for (const auto& prefix : fs::directory_iterator(root_ / "artifacts", ec)) {
    for (const auto& dir : fs::directory_iterator(prefix.path(), ec)) {
      if (live.count(dir.path().lexically_normal().string())) continue;
      bytes += tree_bytes(dir.path());
      fs::remove_all(dir.path(), ec);
      ++removed;
    }
  }
  // Staging folders are named <key>-<pid>-<n>; those of live processes are in use.
  for (const auto& dir : fs::directory_iterator(root_ / "staging", ec)) {
    std::string name = dir.path().filename().string();
    auto a = name.find('-'), b = name.rfind('-');
    std::int64_t pid = a != std::string::npos && b > a ? std::atoll(name.substr(a + 1, b - a - 1).c_str()) : 0;
    if (process_alive(pid)) continue;
    bytes += tree_bytes(dir.path());
    fs::remove_all(dir.path(), ec);
    ++removed;
  }
  return {removed, bytes};
}

std::vector<std::optional<std::string>> Store::get_many(const std::string& ns,
                                                        const std::vector<std::string>& keys) {
  std::lock_guard lock(mutex_);
  Statement st(db_, "SELECT value FROM item_cache WHERE ns=? AND key=?");
  std::vector<std::optional<std::string>> out;
  out.reserve(keys.size());
  for (const auto& k : keys) {
    st.bind(1, ns).bind(2, k);
    out.push_back(st.step() ? std::optional<std::string>(st.blob(0)) : std::nullopt);
    st.reset();
  }
  return out;
}

void Store::put_many(const std::string& ns,
                     const std::vector<std::pair<std::string, std::string>>& entries) {
  if (entries.empty()) return;
  std::lock_guard lock(mutex_);
  WriteTransaction tx(db_);
  Statement st(db_, "INSERT OR REPLACE INTO item_cache(ns, key, value) VALUES(?,?,?)");
  for (const auto& [k, v] : entries) st.bind(1, ns).bind(2, k).bind_blob(3, v).run();
  tx.commit();
}

}  // namespace lvmflow
