#include "store/sqlite_store.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

namespace mailscope::store {
namespace {

constexpr const char* kSchemaV1[] = {
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY,"
    " time INTEGER NOT NULL,"
    " source TEXT NOT NULL,"
    " event TEXT NOT NULL,"
    " level TEXT NOT NULL,"
    " kind TEXT, outcome TEXT, remote_ip TEXT, user TEXT, sender TEXT, recipient TEXT,"
    " domain TEXT, message_id TEXT,"
    " categories TEXT, fields TEXT NOT NULL, units TEXT)",
    "CREATE INDEX events_time ON events(time)",
    "CREATE INDEX events_source_event ON events(source, event, time)",
    // The filter language compares text ASCII case folded, as NOCASE does.
    "CREATE INDEX events_remote_ip ON events(remote_ip COLLATE NOCASE, time)"
    " WHERE remote_ip IS NOT NULL",
    "CREATE INDEX events_user ON events(user COLLATE NOCASE, time) WHERE user IS NOT NULL",
    "CREATE INDEX events_message_id ON events(message_id COLLATE NOCASE, time)"
    " WHERE message_id IS NOT NULL",
};

// Version 2: records that know where their event was read (kOriginStreamBit)
// keep that place, and a place is kept once.
constexpr const char* kSchemaV2[] = {
    "ALTER TABLE events ADD COLUMN origin_stream INTEGER",
    "ALTER TABLE events ADD COLUMN origin_seq INTEGER",
    "CREATE UNIQUE INDEX events_origin ON events(origin_stream, origin_seq)"
    " WHERE origin_stream IS NOT NULL",
};

// A record of a place already kept is left out; any other constraint
// still fails the insert.
constexpr const char* kInsert =
    "INSERT INTO events (time, source, event, level, kind, outcome, remote_ip, user,"
    " sender, recipient, domain, message_id, categories, fields, units, origin_stream,"
    " origin_seq)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
    " ON CONFLICT (origin_stream, origin_seq) WHERE origin_stream IS NOT NULL DO NOTHING";

constexpr const char* kColumns =
    "time, source, event, level, kind, outcome, remote_ip, user, sender, recipient, domain,"
    " message_id, categories, fields, units";

struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

// Binds text, or NULL when empty and `null_when_empty`.
int BindText(sqlite3_stmt* s, int index, std::string_view v, bool null_when_empty) {
  if (v.empty() && null_when_empty) return sqlite3_bind_null(s, index);
  return sqlite3_bind_text64(s, index, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8);
}

std::string_view ColumnView(sqlite3_stmt* s, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  if (p == nullptr) return {};
  return {p, static_cast<std::size_t>(sqlite3_column_bytes(s, i))};
}

}  // namespace

Status SqliteStore::Error(const char* what) const {
  return Unavailable(fmt::format("{}: {}: {}", path_, what, sqlite3_errmsg(db_)));
}

Status SqliteStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) == SQLITE_OK) return Status::Ok();
  Status s = Unavailable(fmt::format("{}: {}", path_, err != nullptr ? err : "error"));
  sqlite3_free(err);
  return s;
}

Status SqliteStore::Prepare(const char* sql, sqlite3_stmt** stmt) {
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, nullptr) != SQLITE_OK)
    return Error("preparing a statement");
  return Status::Ok();
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path, Mode mode,
                                                       Commits commits) {
  sqlite3* db = nullptr;
  const int flags = mode == Mode::kReadOnly
                        ? SQLITE_OPEN_READONLY
                        : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  std::unique_ptr<SqliteStore> store(new SqliteStore(db, path));
  if (rc != SQLITE_OK) {
    if (db == nullptr) return Unavailable(fmt::format("{}: cannot open", path));
    return store->Error("cannot open");
  }
  sqlite3_extended_result_codes(db, 1);
  // A reader may meet the writer's checkpoint; wait for it rather than fail.
  sqlite3_busy_timeout(db, 5000);
  if (mode == Mode::kReadOnly) {
    Stmt version;
    if (sqlite3_prepare_v2(db, "SELECT version FROM mailscope_schema", -1, &version.s, nullptr) !=
        SQLITE_OK)
      return FailedPrecondition(
          fmt::format("{}: not a mailscope records file: {}", path, sqlite3_errmsg(db)));
    if (sqlite3_step(version.s) != SQLITE_ROW)
      return FailedPrecondition(fmt::format("{}: no schema version", path));
    const int v = sqlite3_column_int(version.s, 0);
    if (v > kSqliteSchemaVersion)
      return FailedPrecondition(
          fmt::format("{}: schema version {} is newer than this mailscope's {}", path, v,
                      kSqliteSchemaVersion));
    return store;
  }
  // The page size takes effect only on a new file. Rows are about 1 KB of
  // text and each feeds five indexes: 8 KiB pages split less often than 4 KiB
  // ones. No auto_vacuum: its page map costs 5-15% of the insert rate, and
  // the pages retention frees are reused for new rows before the file grows,
  // so the file stays within max_size without it.
  MS_RETURN_IF_ERROR(store->Exec("PRAGMA page_size = 8192"));
  MS_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode = WAL"));
  MS_RETURN_IF_ERROR(store->Exec(commits == Commits::kSynced ? "PRAGMA synchronous = FULL"
                                                             : "PRAGMA synchronous = NORMAL"));
  MS_RETURN_IF_ERROR(store->Migrate());
  MS_RETURN_IF_ERROR(store->StartCheckpointer());
  MS_RETURN_IF_ERROR(store->Prepare(kInsert, &store->insert_));
  MS_RETURN_IF_ERROR(store->Prepare("BEGIN IMMEDIATE", &store->begin_));
  MS_RETURN_IF_ERROR(store->Prepare("COMMIT", &store->commit_));
  MS_RETURN_IF_ERROR(store->Prepare("ROLLBACK", &store->rollback_));
  return store;
}

Status SqliteStore::Migrate() {
  MS_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto fail = [this](Status s) {
    (void)Exec("ROLLBACK");
    return s;
  };
  Status s = Exec("CREATE TABLE IF NOT EXISTS mailscope_schema (version INTEGER NOT NULL)");
  if (!s.ok()) return fail(s);
  int version = 0;
  {
    Stmt q;
    if (sqlite3_prepare_v2(db_, "SELECT max(version) FROM mailscope_schema", -1, &q.s, nullptr) !=
        SQLITE_OK)
      return fail(Error("reading the schema version"));
    if (sqlite3_step(q.s) == SQLITE_ROW) version = sqlite3_column_int(q.s, 0);
  }
  if (version > kSqliteSchemaVersion)
    return fail(
        FailedPrecondition(fmt::format("{}: schema version {} is newer than this "
                                       "mailscope's {}; records are not written to it",
                                       path_, version, kSqliteSchemaVersion)));
  if (version < 1) {
    for (const char* sql : kSchemaV1) {
      s = Exec(sql);
      if (!s.ok()) return fail(s);
    }
  }
  if (version < 2) {
    for (const char* sql : kSchemaV2) {
      s = Exec(sql);
      if (!s.ok()) return fail(s);
    }
    s = Exec("DELETE FROM mailscope_schema; INSERT INTO mailscope_schema VALUES (2)");
    if (!s.ok()) return fail(s);
  }
  return Exec("COMMIT");
}

// Checkpoints, with their fsyncs, are done by a thread of their own on a
// connection of its own, so that the writer never waits for the disk
// (records_sink_bench, a million rows: 68-78k records/s with SQLite's own
// checkpoints in the commit, 100-127k with this). PASSIVE checkpoints never
// block the writer;
// but a writer that commits during every checkpoint keeps the WAL from
// starting over, so past kWalHardFrames the writer's commit checkpoints
// itself and restarts the WAL.
struct SqliteStore::Checkpointer {
  static constexpr int kWakeFrames = 2000;       // 16 MiB of 8 KiB pages
  static constexpr int kWalHardFrames = 32'000;  // 256 MiB

  sqlite3* db = nullptr;
  std::mutex mu;
  std::condition_variable wake;
  bool due = false;
  bool stopping = false;
  std::thread thread;

  ~Checkpointer() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    wake.notify_one();
    if (thread.joinable()) thread.join();
    sqlite3_close_v2(db);
  }
  void Run() {
    std::unique_lock lock(mu);
    while (!stopping) {
      wake.wait_for(lock, std::chrono::seconds(1), [this] { return due || stopping; });
      if (stopping) break;
      due = false;
      lock.unlock();
      sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      lock.lock();
    }
  }
  // sqlite3_wal_hook: after each commit of the writer, on its thread.
  static int AfterCommit(void* self, sqlite3* writer, const char* schema, int frames) {
    auto* c = static_cast<Checkpointer*>(self);
    if (frames >= kWalHardFrames) {
      sqlite3_wal_checkpoint_v2(writer, schema, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
    } else if (frames >= kWakeFrames) {
      {
        std::lock_guard lock(c->mu);
        c->due = true;
      }
      c->wake.notify_one();
    }
    return SQLITE_OK;
  }
};

SqliteStore::SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

Status SqliteStore::StartCheckpointer() {
  auto c = std::make_unique<Checkpointer>();
  if (sqlite3_open_v2(path_.c_str(), &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK)
    return Unavailable(fmt::format("{}: cannot open for checkpoints: {}", path_,
                                   c->db != nullptr ? sqlite3_errmsg(c->db) : "out of memory"));
  sqlite3_busy_timeout(c->db, 5000);
  // A connection checkpoints only once it has read the file and so knows it
  // is in WAL mode.
  if (sqlite3_exec(c->db, "SELECT version FROM mailscope_schema", nullptr, nullptr, nullptr) !=
      SQLITE_OK)
    return Unavailable(
        fmt::format("{}: cannot read for checkpoints: {}", path_, sqlite3_errmsg(c->db)));
  c->thread = std::thread([p = c.get()] { p->Run(); });
  // Replaces SQLite's own checkpoints in the commit (wal_autocheckpoint).
  sqlite3_wal_hook(db_, &Checkpointer::AfterCommit, c.get());
  checkpointer_ = std::move(c);
  return Status::Ok();
}

SqliteStore::~SqliteStore() {
  if (checkpointer_ != nullptr) sqlite3_wal_hook(db_, nullptr, nullptr);
  checkpointer_.reset();
  for (sqlite3_stmt* s : {insert_, begin_, commit_, rollback_}) sqlite3_finalize(s);
  sqlite3_close_v2(db_);
}

Status SqliteStore::Insert(std::span<const RecordView> records) {
  auto step = [](sqlite3_stmt* s) {
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc;
  };
  if (step(begin_) != SQLITE_DONE) return Error("BEGIN");
  for (const RecordView& r : records) {
    sqlite3_stmt* s = insert_;
    sqlite3_bind_int64(s, 1, r.time_us);
    BindText(s, 2, SourceName(r.source), false);
    BindText(s, 3, r.event, false);
    BindText(s, 4, LevelName(r.level), false);
    BindText(s, 5, r.kind, true);
    BindText(s, 6, r.outcome, true);
    BindText(s, 7, r.remote_ip, true);
    BindText(s, 8, r.user, true);
    BindText(s, 9, r.sender, true);
    BindText(s, 10, r.recipient, true);
    BindText(s, 11, r.domain, true);
    BindText(s, 12, r.message_id, true);
    BindText(s, 13, r.categories, true);
    BindText(s, 14, r.fields, false);
    BindText(s, 15, r.units, true);
    if ((r.stream & kOriginStreamBit) != 0) {
      // SQLite's integers are signed: the bit pattern is kept.
      sqlite3_bind_int64(s, 16, static_cast<sqlite3_int64>(r.stream));
      sqlite3_bind_int64(s, 17, static_cast<sqlite3_int64>(r.seq));
    }  // else NULL, cleared after the last row
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) {
      Status err = Error("INSERT");
      step(rollback_);
      return err;
    }
  }
  if (step(commit_) != SQLITE_DONE) {
    Status err = Error("COMMIT");
    step(rollback_);
    return err;
  }
  return Status::Ok();
}

Result<std::uint64_t> SqliteStore::DeleteBefore(std::int64_t time_us, std::uint64_t limit) {
  Stmt s;
  if (sqlite3_prepare_v2(db_,
                         "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time < ?1 "
                         "ORDER BY time LIMIT ?2)",
                         -1, &s.s, nullptr) != SQLITE_OK)
    return Error("preparing a retention delete");
  sqlite3_bind_int64(s.s, 1, time_us);
  sqlite3_bind_int64(s.s, 2, static_cast<sqlite3_int64>(limit));
  if (sqlite3_step(s.s) != SQLITE_DONE) return Error("retention delete");
  return static_cast<std::uint64_t>(sqlite3_changes64(db_));
}

Result<std::uint64_t> SqliteStore::DeleteOldest(std::uint64_t limit) {
  return DeleteBefore(INT64_MAX, limit);
}

Result<std::uint64_t> SqliteStore::TrimToSize(std::uint64_t max_bytes,
                                              const std::function<void()>& between_chunks) {
  std::uint64_t deleted = 0;
  for (;;) {
    auto used = UsedBytes();
    if (!used.ok()) return used.status();
    if (*used <= max_bytes) break;
    auto rows = RowCount();
    if (!rows.ok()) return rows.status();
    if (*rows == 0) break;
    // Rows in proportion to the excess, at least 1% of them.
    const double excess = static_cast<double>(*used - max_bytes) / static_cast<double>(*used);
    const auto want =
        static_cast<std::uint64_t>(std::max(excess, 0.01) * static_cast<double>(*rows) + 1);
    auto n = DeleteOldest(std::min(want, kRetentionChunk));
    if (!n.ok()) return n.status();
    deleted += *n;
    if (*n == 0) break;
    between_chunks();
  }
  return deleted;
}

Result<std::uint64_t> SqliteStore::UsedBytes() {
  std::int64_t values[3] = {};
  const char* pragmas[3] = {"PRAGMA page_count", "PRAGMA freelist_count", "PRAGMA page_size"};
  for (int i = 0; i < 3; ++i) {
    Stmt s;
    if (sqlite3_prepare_v2(db_, pragmas[i], -1, &s.s, nullptr) != SQLITE_OK ||
        sqlite3_step(s.s) != SQLITE_ROW)
      return Error(pragmas[i]);
    values[i] = sqlite3_column_int64(s.s, 0);
  }
  return static_cast<std::uint64_t>((values[0] - values[1]) * values[2]);
}

Result<std::uint64_t> SqliteStore::RowCount() {
  Stmt s;
  if (sqlite3_prepare_v2(db_, "SELECT count(*) FROM events", -1, &s.s, nullptr) != SQLITE_OK ||
      sqlite3_step(s.s) != SQLITE_ROW)
    return Error("counting rows");
  return static_cast<std::uint64_t>(sqlite3_column_int64(s.s, 0));
}

Status SqliteStore::DistinctEvents(std::vector<std::string>& out) {
  // A skip scan of the (source, event, time) index: one seek a name, not a
  // pass over every row (0.27 s for a million rows before).
  Stmt s;
  if (sqlite3_prepare_v2(db_,
                         "SELECT event FROM events WHERE source = ?1 AND event > ?2 "
                         "ORDER BY event LIMIT 1",
                         -1, &s.s, nullptr) != SQLITE_OK)
    return Error("preparing the event names query");
  for (int i = 0; i < kSourceCount; ++i) {
    std::string last;
    for (;;) {
      BindText(s.s, 1, SourceName(static_cast<Source>(i)), false);
      BindText(s.s, 2, last, false);
      const int rc = sqlite3_step(s.s);
      if (rc == SQLITE_ROW) last = ColumnView(s.s, 0);
      sqlite3_reset(s.s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return Error("reading the event names");
      out.push_back(last);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return Status::Ok();
}

Status SqliteStore::Read(const RecordQuery& query,
                         const std::function<bool(const RecordView&)>& row) {
  std::string sql = fmt::format("SELECT {} FROM events WHERE time >= ?1 AND time < ?2", kColumns);
  if (!query.events.empty()) {
    sql += " AND event IN (";
    for (std::size_t i = 0; i < query.events.size(); ++i) sql += i == 0 ? "?" : ", ?";
    sql += ")";
  }
  for (const RecordQuery::Equals& e : query.equals) {
    if (e.column != "remote_ip" && e.column != "user" && e.column != "message_id")
      return InvalidArgument(fmt::format("no index on {}", e.column));
    sql += fmt::format(" AND {} = ? COLLATE NOCASE", e.column);
  }
  sql += query.newest_first ? " ORDER BY time DESC, id DESC" : " ORDER BY time, id";
  Stmt s;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s.s, nullptr) != SQLITE_OK)
    return Error("preparing the query");
  sqlite3_bind_int64(s.s, 1, query.since_us);
  sqlite3_bind_int64(s.s, 2, query.until_us);
  int next = 3;
  for (const std::string& e : query.events) BindText(s.s, next++, e, false);
  for (const RecordQuery::Equals& e : query.equals) BindText(s.s, next++, e.value, false);
  RecordView r;
  for (;;) {
    const int rc = sqlite3_step(s.s);
    if (rc == SQLITE_DONE) return Status::Ok();
    if (rc != SQLITE_ROW) return Error("reading records");
    r.time_us = sqlite3_column_int64(s.s, 0);
    if (!ParseSourceName(ColumnView(s.s, 1), r.source))
      return FailedPrecondition(
          fmt::format("{}: unknown source \"{}\" in a record", path_, ColumnView(s.s, 1)));
    if (!ParseLevelName(ColumnView(s.s, 3), r.level)) r.level = Level::kInfo;
    r.event = ColumnView(s.s, 2);
    r.kind = ColumnView(s.s, 4);
    r.outcome = ColumnView(s.s, 5);
    r.remote_ip = ColumnView(s.s, 6);
    r.user = ColumnView(s.s, 7);
    r.sender = ColumnView(s.s, 8);
    r.recipient = ColumnView(s.s, 9);
    r.domain = ColumnView(s.s, 10);
    r.message_id = ColumnView(s.s, 11);
    r.categories = ColumnView(s.s, 12);
    r.fields = ColumnView(s.s, 13);
    r.units = ColumnView(s.s, 14);
    if (!row(r)) return Status::Ok();
  }
}

}  // namespace mailscope::store
