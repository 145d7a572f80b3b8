#include "pipeline/store.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <cerrno>
#include <random>
#include <set>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"
#include "pipeline/sqlite_statement.hpp"

namespace lvmflow {

namespace fs = std::filesystem;
using store_sql::Statement;
using store_sql::WriteTransaction;
using store_sql::sql_hint;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

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

// The artifact folder of `key` relative to the store (what cache_entries.artifact holds).
std::string relative_artifact(const std::string& key) { return "artifacts/" + key.substr(0, 2) + "/" + key; }

// Swaps two folders atomically. Where the file system cannot (no RENAME_EXCHANGE), the old
// folder is moved aside first: a reader may then briefly find neither, never a mix.
void exchange_folders(const fs::path& fresh, const fs::path& target) {
  if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) return;
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
    throw Error(target.string(), std::string("cannot replace the stored artifact: ") + std::strerror(errno),
                "check free disk space and permissions of the store");
  fs::path aside = fresh;
  aside += ".old";
  fs::rename(target, aside);
  fs::rename(fresh, target);
  fs::rename(aside, fresh);
}

// The pid a staging folder belongs to: `<key>-<pid>-<n>` for stage output, `resume-<id>.<pid>.<n>`
// for a run's private resume folder; 0 for a shared resume folder (`resume-<id>`).
std::int64_t staging_owner(const std::string& name) {
  if (name.rfind("resume-", 0) == 0) {
    auto a = name.find('.'), b = name.rfind('.');
    return a != std::string::npos && b > a ? std::atoll(name.substr(a + 1, b - a - 1).c_str()) : 0;
  }
  auto a = name.find('-'), b = name.rfind('-');
  return a != std::string::npos && b > a ? std::atoll(name.substr(a + 1, b - a - 1).c_str()) : 0;
}

// Takes the exclusive flock of `dir`/.lock without waiting; -1 if another process holds it
// (or the folder has no lock file). The caller closes the descriptor to let go.
int try_lock_folder(const fs::path& dir, bool create) {
  int fd = ::open((dir / ".lock").c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
  if (fd < 0) return -1;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool folder_locked_by_other(const fs::path& dir) {
  if (!fs::exists(dir / ".lock")) return false;
  int fd = try_lock_folder(dir, false);
  if (fd < 0) return true;
  ::close(fd);
  return false;
}

std::string staging_suffix() {
  static std::mt19937_64 rng{std::random_device{}()};
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  return std::to_string(::getpid()) + "-" + std::to_string(rng() % 1000000000);
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
CREATE TABLE IF NOT EXISTS artifact_files (
  key TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL, xxh3 TEXT NOT NULL,
  PRIMARY KEY (key, path));
)SQL";

void insert_artifact_files(sqlite3* db, const std::string& key, const std::vector<ArtifactFile>& files) {
  Statement(db, "DELETE FROM artifact_files WHERE key=?").bind(1, key).run();
  Statement st(db, "INSERT INTO artifact_files(key, path, size, xxh3) VALUES(?,?,?,?)");
  for (const auto& f : files) st.bind(1, key).bind(2, f.path).bind(3, f.size).bind(4, f.xxh3).run();
}

// --- schema migrations: each brings a store from version `to - 1` to `to`, inside the
// transaction that opens it. kSchema has already created any table that is new.

// v2: a checksum per artifact file (artifact_files), and cache_entries.artifact relative to
// the store, so a moved or copied store still finds its artifacts. Artifacts committed
// before are trusted as they are now: their checksums are recorded here.
void migrate_to_v2_artifact_checksums(sqlite3* db, const fs::path& root) {
  Statement(db, "UPDATE cache_entries SET artifact = 'artifacts/' || substr(key, 1, 2) || '/' || key").run();
  std::vector<std::string> keys;
  Statement list(db, "SELECT key FROM cache_entries");
  while (list.step()) keys.push_back(list.text(0));
  for (const auto& key : keys)
    if (fs::is_directory(root / relative_artifact(key))) insert_artifact_files(db, key, checksum_files(root / relative_artifact(key)));
}

// v3: batches.bin records (format 2) may refer to rows of the artifact's vectors.npy instead of
// holding vectors, and the embedding item cache holds row references (a new namespace, so old
// entries are simply never looked up). Format-1 records are still read as written and stages
// whose output layout changed (seq.window, lvm.*) bumped their implementation version, so
// nothing stored is misread; the version mark is what changes, so an older lvmflow refuses
// this store instead of failing on records it cannot read.
void migrate_to_v3_vector_references(sqlite3*, const fs::path&) {}

struct Migration {
  int to;
  void (*apply)(sqlite3* db, const fs::path& root);
};
constexpr Migration kMigrations[] = {
    {2, migrate_to_v2_artifact_checksums},
    {3, migrate_to_v3_vector_references},
};

// A file name as a SQLite URI path (RFC 3986 percent-encoding of what URIs reserve).
std::string uri_path(const fs::path& p) {
  std::string out;
  for (unsigned char c : p.string()) {
    if (std::isalnum(c) || std::strchr("/-._~", c)) {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

Store::Store(const fs::path& root, StoreMode mode) : mode_(mode) {
  std::error_code ec;
  const fs::path absolute = fs::absolute(root);
  if (mode == StoreMode::ReadWrite) {
    fs::create_directories(absolute / "artifacts", ec);
    fs::create_directories(absolute / "staging", ec);
    if (ec) throw Error(absolute.string(), "cannot create the store folder: " + ec.message(),
                        "choose a writable `store:` location");
  }
  // Canonical, so a store reached through a symlink is the same store.
  root_ = fs::weakly_canonical(absolute, ec);
  if (ec) root_ = absolute.lexically_normal();
  const fs::path db_path = root_ / "lvmflow.db";
  if (mode == StoreMode::ReadOnly) open_read_only(db_path);
  else open_read_write(db_path);
}

void Store::open_read_write(const fs::path& db_path) {
  // Opening (creating and migrating on first use) is serialized between processes by an
  // flock on store.lock: two runs creating a new store at once would otherwise race
  // SQLite's switch to WAL mode, and one of them would fail with "database is locked".
  int lock_fd = ::open((root_ / "store.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd >= 0) ::flock(lock_fd, LOCK_EX);
  struct Unlock {
    int fd;
    ~Unlock() { if (fd >= 0) ::close(fd); }
  } unlock{lock_fd};
  if (sqlite3_open_v2(db_path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(db_path.string(), "cannot open the store database: " + msg);
  }
  // Long busy timeout: a second run waits for the first one's short write transactions.
  sqlite3_busy_timeout(db_, 120000);
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=NORMAL");
  exec("PRAGMA foreign_keys=ON");
  migrate();
}

void Store::open_read_only(const fs::path& db_path) {
  if (!fs::exists(db_path)) {
    // No store yet: an empty one in memory, so `plan` can say that everything would run.
    sqlite3_open_v2(":memory:", &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    exec(kSchema);
    return;
  }
  // mode=ro sees live runs through the WAL; it needs the -shm file to exist or be creatable.
  // A folder the user cannot write and no -shm (no run going on): read the file as it is.
  std::string error;
  for (const char* options : {"?mode=ro", "?immutable=1"}) {
    std::string uri = "file:" + uri_path(db_path) + options;
    if (sqlite3_open_v2(uri.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr) ==
        SQLITE_OK) {
      sqlite3_busy_timeout(db_, 120000);
      sqlite3_stmt* probe = nullptr;
      int rc = sqlite3_prepare_v2(db_, "SELECT value FROM meta WHERE key='schema_version'", -1, &probe, nullptr);
      if (rc == SQLITE_OK) rc = sqlite3_step(probe);
      if (rc == SQLITE_ROW) schema_version_ = std::atoi(reinterpret_cast<const char*>(sqlite3_column_text(probe, 0)));
      sqlite3_finalize(probe);
      if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        if (schema_version_ > kStoreSchemaVersion)
          throw Error(root_.string(), "store schema version " + std::to_string(schema_version_) +
                                          " is newer than this lvmflow (" + std::to_string(kStoreSchemaVersion) + ")",
                      "upgrade lvmflow");
        return;
      }
    }
    error = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
  }
  throw Error(db_path.string(), "cannot read the store database: " + error, "is this an lvmflow store?");
}

Store::~Store() { sqlite3_close(db_); }

void Store::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    throw Error((root_ / "lvmflow.db").string(), "SQL error: " + msg, sql_hint(db_));
  }
}

void Store::migrate() {
  std::lock_guard lock(mutex_);
  WriteTransaction tx(db_);
  exec(kSchema);
  Statement get(db_, "SELECT value FROM meta WHERE key='schema_version'");
  if (!get.step()) {   // a new store
    Statement(db_, "INSERT INTO meta(key, value) VALUES('schema_version', ?)")
        .bind(1, std::to_string(kStoreSchemaVersion))
        .run();
    tx.commit();
    return;
  }
  int version = std::stoi(get.text(0));
  get.reset();
  if (version > kStoreSchemaVersion)
    throw Error(root_.string(), "store schema version " + std::to_string(version) +
                                    " is newer than this lvmflow (" + std::to_string(kStoreSchemaVersion) + ")",
                "upgrade lvmflow or use another store");
  for (const auto& m : kMigrations) {
    if (version >= m.to) continue;
    m.apply(db_, root_);
    version = m.to;
  }
  Statement(db_, "UPDATE meta SET value=? WHERE key='schema_version'").bind(1, std::to_string(version)).run();
  tx.commit();
}

fs::path Store::artifact_path(const std::string& key) const { return root_ / relative_artifact(key); }

fs::path Store::make_staging_dir(const std::string& key) {
  fs::path dir = root_ / "staging" / (key.substr(0, 16) + "-" + staging_suffix());
  fs::create_directories(dir);
  return dir;
}

ResumeFolder::ResumeFolder(fs::path path, int lock_fd, bool shared)
    : path_(std::move(path)), lock_fd_(lock_fd), shared_(shared) {}

ResumeFolder::~ResumeFolder() {
  std::error_code ec;
  if (!shared_) fs::remove_all(path_, ec);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::unique_ptr<ResumeFolder> Store::claim_resume_folder(const std::string& id) {
  if (id.empty() || id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != std::string::npos)
    throw Error("resume_dir('" + id + "')", "the id must be letters, digits, '-' or '_'");
  const fs::path shared = root_ / "staging" / ("resume-" + id);
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::error_code ec;
    fs::create_directories(shared, ec);
    int fd = try_lock_folder(shared, true);
    if (fd < 0) {
      if (fs::exists(shared / ".lock")) break;   // held by another live run
      continue;                                  // removed under us: try again
    }
    // Only a lock on the file that is still there counts (its folder may have just been deleted).
    struct stat held{}, now{};
    if (::fstat(fd, &held) == 0 && ::stat((shared / ".lock").c_str(), &now) == 0 && held.st_ino == now.st_ino &&
        held.st_dev == now.st_dev)
      return std::make_unique<ResumeFolder>(shared, fd, true);
    ::close(fd);
  }
  // Another run works on the same id right now: this one keeps private state, so neither
  // overwrites the other's.
  std::string suffix = staging_suffix();
  std::replace(suffix.begin(), suffix.end(), '-', '.');
  const fs::path mine = root_ / "staging" / ("resume-" + id + "." + suffix);
  fs::create_directories(mine);
  return std::make_unique<ResumeFolder>(mine, try_lock_folder(mine, true), false);
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
               "SELECT key, stage_type, run_id, items, batches, bytes, created_ms "
               "FROM cache_entries WHERE key=?");
  st.bind(1, key);
  if (!st.step()) return std::nullopt;
  CacheEntry e{st.text(0), st.text(1), artifact_path(key), st.i64(2), st.i64(3), st.i64(4), st.i64(5), st.i64(6)};
  // An entry whose folder vanished (deleted by hand) is not a usable cache hit.
  if (!fs::is_directory(e.artifact)) return std::nullopt;
  return e;
}

std::vector<ArtifactFile> Store::artifact_files(const std::string& key) {
  std::lock_guard lock(mutex_);
  if (schema_version_ < 2) return {};   // a read-only store of an older lvmflow
  Statement st(db_, "SELECT path, size, xxh3 FROM artifact_files WHERE key=? ORDER BY path");
  st.bind(1, key);
  std::vector<ArtifactFile> out;
  while (st.step()) out.push_back({st.text(0), st.i64(1), st.text(2)});
  return out;
}

ArtifactStatus Store::verify_artifact(const std::string& key, VerifyDepth depth) {
  ArtifactStatus status;
  status.key = key;
  auto recorded = artifact_files(key);
  status.recorded = !recorded.empty();
  if (!status.recorded) {
    if (!fs::is_directory(artifact_path(key))) status.problems.push_back("folder " + artifact_path(key).string() + " is missing");
    return status;
  }
  status.problems = check_files(artifact_path(key), recorded, depth);
  return status;
}

std::vector<CacheEntry> Store::cache_entries() {
  std::lock_guard lock(mutex_);
  Statement st(db_, "SELECT key, stage_type, run_id, items, batches, bytes, created_ms FROM cache_entries ORDER BY key");
  std::vector<CacheEntry> out;
  while (st.step())
    out.push_back({st.text(0), st.text(1), artifact_path(st.text(0)), st.i64(2), st.i64(3), st.i64(4), st.i64(5), st.i64(6)});
  return out;
}

std::map<std::string, std::set<std::string>> Store::stage_names_by_key() {
  std::lock_guard lock(mutex_);
  Statement st(db_, "SELECT DISTINCT key, stage FROM stage_runs");
  std::map<std::string, std::set<std::string>> out;
  while (st.step()) out[st.text(0)].insert(st.text(1));
  return out;
}

void Store::commit_artifact(const fs::path& staging, const CacheEntry& entry,
                            const std::vector<Batch>& chunk_batches, bool replace) {
  const fs::path final_dir = artifact_path(entry.key);
  fs::create_directories(final_dir.parent_path());
  fsync_tree(staging);
  const auto files = checksum_files(staging);

  CacheEntry e = entry;
  e.bytes = 0;
  for (const auto& f : files) e.bytes += f.size;
  e.created_ms = now_ms();
  std::lock_guard lock(mutex_);
  // The write lock is taken before the folder is published, so the folder and its rows change
  // together as seen by any other process (commits of the same key are serialized).
  WriteTransaction tx(db_);
  Statement existing(db_, "SELECT COUNT(*) FROM cache_entries WHERE key=?");
  existing.bind(1, e.key).step();
  const bool recorded = existing.i64(0) > 0;
  existing.reset();
  bool discard_staging = false;
  if (!fs::exists(final_dir)) {
    std::error_code ec;
    fs::rename(staging, final_dir, ec);
    if (ec) throw Error(final_dir.string(), "cannot commit artifact: " + ec.message(), "check free disk space");
  } else if (recorded && !replace) {
    // Another run committed this key meanwhile: keep its artifact, drop ours (same content).
    tx.commit();
    std::error_code ec;
    fs::remove_all(staging, ec);
    return;
  } else {
    // Forced, found damaged, or left without its row by a run killed after its rename.
    exchange_folders(staging, final_dir);
    discard_staging = true;
  }
  fsync_path(final_dir.parent_path(), true);
  try {
    Statement(db_,
              "INSERT OR REPLACE INTO cache_entries(key, stage_type, artifact, run_id, items, batches, "
              "bytes, created_ms) VALUES(?,?,?,?,?,?,?,?)")
        .bind(1, e.key).bind(2, e.stage_type).bind(3, relative_artifact(e.key)).bind(4, e.run_id).bind(5, e.items)
        .bind(6, e.batches).bind(7, e.bytes).bind(8, e.created_ms).run();
    insert_artifact_files(db_, e.key, files);
    Statement(db_, "DELETE FROM chunks WHERE key=?").bind(1, e.key).run();
    Statement chunk(db_,
                    "INSERT INTO chunks(key, position, chunk_id, article_id, title, section, "
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
  } catch (...) {
    // The rows could not be written (e.g. a full disk): take the folder back out, so no
    // artifact without its rows is left behind and the run's staging clean-up frees its space.
    try {
      std::error_code ec;
      if (discard_staging) exchange_folders(staging, final_dir);
      else fs::rename(final_dir, staging, ec);
    } catch (const std::exception&) {   // keep the first error: it says what went wrong
    }
    throw;
  }
  if (discard_staging) {   // now holds the replaced folder
    std::error_code ec;
    fs::remove_all(staging, ec);
  }
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
  if (read_only()) return sha;
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

GcResult Store::gc(bool all) {
  GcResult result;
  std::error_code ec;
  auto remove = [&](const fs::path& dir) {
    result.bytes += tree_bytes(dir);
    fs::remove_all(dir, ec);
    ++result.removed;
  };
  // Dead artifact folders are moved into staging under the write lock (a commit publishes its
  // folder and row in one write transaction, so none can appear half-way), deleted after.
  std::vector<fs::path> doomed;
  {
    std::lock_guard lock(mutex_);
    WriteTransaction tx(db_);
    std::set<std::string> live;
    Statement st(db_, "SELECT key FROM cache_entries");
    while (st.step()) live.insert(st.text(0));
    // Folders are compared by name (the key) under the store's own artifacts/ folder, so
    // neither a symlinked path nor a copied store can make live artifacts look dead.
    for (const auto& prefix : fs::directory_iterator(root_ / "artifacts", ec)) {
      for (const auto& dir : fs::directory_iterator(prefix.path(), ec)) {
        std::string key = dir.path().filename().string();
        if (live.count(key) && key.rfind(prefix.path().filename().string(), 0) == 0) continue;
        fs::path trash = root_ / "staging" / ("gctrash-" + staging_suffix());
        fs::rename(dir.path(), trash, ec);
        if (!ec) doomed.push_back(trash);
      }
    }
    tx.commit();
  }
  for (const auto& dir : doomed) remove(dir);
  for (const auto& dir : fs::directory_iterator(root_ / "staging", ec)) {
    const std::string name = dir.path().filename().string();
    if (name.rfind("resume-", 0) == 0) {
      // Locked by a live run: in use. Held while deleting, so no run can claim it meanwhile.
      int fd = try_lock_folder(dir.path(), false);
      if (fd < 0 && fs::exists(dir.path() / ".lock")) continue;
      const std::int64_t owner = staging_owner(name);
      if (owner == 0 && !all) {   // shared state a re-run of the same work continues from
        ++result.kept_resume;
        result.kept_resume_bytes += tree_bytes(dir.path());
      } else if (!process_alive(owner)) {
        remove(dir.path());
      }
      if (fd >= 0) ::close(fd);
      continue;
    }
    // Stage output folders are named <key>-<pid>-<n>; those of live processes are in use.
    if (process_alive(staging_owner(name))) continue;
    remove(dir.path());
  }
  return result;
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
