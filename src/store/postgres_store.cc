#include "store/postgres_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>

#include "export/json_writer.h"
#include "store/libpq.h"

namespace mailscope::store {
namespace {

// libpq: loaded by RedactConninfo() and Open(), which come first.
const LibPq& Pq() { return **LoadLibPq(); }

constexpr const char* kSchemaV1 =
    "CREATE TABLE events ("
    " id bigserial PRIMARY KEY,"
    " stream bigint NOT NULL, seq bigint NOT NULL,"
    " time timestamptz NOT NULL,"
    " source text NOT NULL, event text NOT NULL, level text NOT NULL,"
    " kind text, outcome text, remote_ip text, \"user\" text, sender text, recipient text,"
    " domain text, message_id text,"
    " categories json, fields json NOT NULL, units json,"
    " UNIQUE (stream, seq));"
    "CREATE INDEX events_time ON events (time);"
    "CREATE INDEX events_source_event ON events (source, event, time);"
    "CREATE INDEX events_remote_ip ON events (lower(remote_ip), time)"
    " WHERE remote_ip IS NOT NULL;"
    "CREATE INDEX events_user ON events (lower(\"user\"), time) WHERE \"user\" IS NOT NULL;"
    "CREATE INDEX events_message_id ON events (lower(message_id), time)"
    " WHERE message_id IS NOT NULL;";

constexpr int kColumnsPerRow = 17;
constexpr const char* kInsertColumns =
    "INSERT INTO events (stream, seq, time, source, event, level, kind, outcome, remote_ip,"
    " \"user\", sender, recipient, domain, message_id, categories, fields, units) VALUES ";

constexpr const char* kSelectColumns =
    "SELECT (extract(epoch FROM time) * 1000000)::bigint, source, event, level, kind, outcome,"
    " remote_ip, \"user\", sender, recipient, domain, message_id, categories, fields, units,"
    " stream, seq FROM events";

struct ResultHolder {
  PGresult* r;
  explicit ResultHolder(PGresult* res) : r(res) {}
  ~ResultHolder() { Pq().clear(r); }
  ResultHolder(const ResultHolder&) = delete;
  ResultHolder& operator=(const ResultHolder&) = delete;
};

// A text column's value as PostgreSQL can hold it, or nullptr (NULL) when it
// holds NUL or is not UTF-8, or is empty and `null_when_empty`.
const char* Column(std::string_view v, bool null_when_empty, std::deque<std::string>& keep) {
  if (v.empty()) return null_when_empty ? nullptr : "";
  if (v.find('\0') != std::string_view::npos || !exporter::IsValidUtf8(v)) return nullptr;
  keep.emplace_back(v);
  return keep.back().c_str();
}

// An event name with NUL and bytes that are not UTF-8 replaced by U+FFFD.
std::string Printable(std::string_view v) {
  std::string out;
  for (std::size_t i = 0; i < v.size();) {
    std::size_t n = 1;
    const auto c = static_cast<unsigned char>(v[i]);
    if (c >= 0xF0)
      n = 4;
    else if (c >= 0xE0)
      n = 3;
    else if (c >= 0xC0)
      n = 2;
    if (c != 0 && i + n <= v.size() && exporter::IsValidUtf8(v.substr(i, n))) {
      out.append(v.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

// A time as a timestamptz parameter. timestamptz holds the years 4713 BC to
// 294276 AD; times are kept within 1 to 9999 (a record's fields keep what
// the source said).
std::string Rfc3339(std::int64_t time_us) {
  constexpr std::int64_t kYear1 = -62'135'596'800'000'000, kYear9999 = 253'402'300'799'000'000;
  std::string out;
  AppendRfc3339(out, std::clamp(time_us, kYear1, kYear9999));
  return out;
}

std::string_view Value(PGresult* r, int row, int col) {
  if (Pq().getisnull(r, row, col)) return {};
  return {Pq().getvalue(r, row, col), static_cast<std::size_t>(Pq().getlength(r, row, col))};
}

}  // namespace

std::string RedactConninfo(const std::string& conninfo) {
  if (!LoadLibPq().ok()) return "(a database conninfo, not read: libpq is missing)";
  char* err = nullptr;
  PQconninfoOption* options = Pq().conninfoParse(conninfo.c_str(), &err);
  if (options == nullptr) {
    Pq().freemem(err);
    return "(a database conninfo that does not parse)";
  }
  std::string out;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || std::strcmp(o->keyword, "password") == 0) continue;
    if (!out.empty()) out += ' ';
    out += fmt::format("{}={}", o->keyword, o->val);
  }
  Pq().conninfoFree(options);
  return out;
}

Result<std::unique_ptr<PostgresStore>> PostgresStore::Open(const std::string& conninfo,
                                                           bool connect_now) {
  if (auto pq = LoadLibPq(); !pq.ok()) {
    return FailedPrecondition(fmt::format("database: {}", pq.status().message()));
  }
  char* err = nullptr;
  PQconninfoOption* options = Pq().conninfoParse(conninfo.c_str(), &err);
  if (options == nullptr) {
    std::string msg = err != nullptr ? err : "out of memory";
    Pq().freemem(err);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    return InvalidArgument(fmt::format("database: {}", msg));
  }
  Pq().conninfoFree(options);
  std::unique_ptr<PostgresStore> store(new PostgresStore(conninfo, RedactConninfo(conninfo)));
  if (connect_now) (void)store->Connect();  // away now: the writer connects later
  return store;
}

PostgresStore::~PostgresStore() {
  if (conn_ != nullptr) Pq().finish(conn_);
}

Status PostgresStore::Fail(std::string_view what) {
  std::string msg = conn_ != nullptr ? Pq().errorMessage(conn_) : "not connected";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  Status s = Unavailable(fmt::format("PostgreSQL ({}): {}: {}", display_, what, msg));
  // A broken connection is dropped; the next call connects anew.
  if (conn_ != nullptr && Pq().status(conn_) != CONNECTION_OK) {
    Pq().finish(conn_);
    conn_ = nullptr;
  }
  return s;
}

Status PostgresStore::Exec(const char* sql) {
  if (conn_ == nullptr) return Unavailable(fmt::format("PostgreSQL ({}): not connected", display_));
  ResultHolder r(Pq().exec(conn_, sql));
  const ExecStatusType st = Pq().resultStatus(r.r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return Fail(sql);
  return Status::Ok();
}

Status PostgresStore::Connect(bool migrate) {
  if (conn_ != nullptr && Pq().status(conn_) == CONNECTION_OK) return Status::Ok();
  if (conn_ != nullptr) Pq().finish(conn_);
  // A default connect_timeout, so that a host that does not answer holds the
  // writer for seconds, not minutes; one in the conninfo wins (it comes later).
  const char* keywords[] = {"connect_timeout", "dbname", nullptr};
  const char* values[] = {"5", conninfo_.c_str(), nullptr};
  conn_ = Pq().connectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn_ == nullptr || Pq().status(conn_) != CONNECTION_OK) return Fail("cannot connect");
  // Notices (CREATE ... IF NOT EXISTS) are not for the log.
  Pq().setNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
  return migrate ? Migrate() : Status::Ok();
}

Result<int> PostgresStore::SchemaVersion() {
  if (conn_ == nullptr) return Unavailable(fmt::format("PostgreSQL ({}): not connected", display_));
  ResultHolder exists(Pq().exec(conn_, "SELECT to_regclass('mailscope_schema') IS NOT NULL"));
  if (Pq().resultStatus(exists.r) != PGRES_TUPLES_OK) return Fail("reading the schema version");
  if (Value(exists.r, 0, 0) != "t") return 0;
  ResultHolder r(Pq().exec(conn_, "SELECT coalesce(max(version), 0) FROM mailscope_schema"));
  if (Pq().resultStatus(r.r) != PGRES_TUPLES_OK) return Fail("reading the schema version");
  return std::atoi(Pq().getvalue(r.r, 0, 0));
}

Status PostgresStore::Migrate() {
  MS_RETURN_IF_ERROR(Exec("BEGIN"));
  // One mailscope migrates at a time.
  Status s = Exec("SELECT pg_advisory_xact_lock(7237005815375806307)");
  if (s.ok()) s = Exec("CREATE TABLE IF NOT EXISTS mailscope_schema (version integer NOT NULL)");
  Result<int> version = s.ok() ? SchemaVersion() : Result<int>(s);
  if (version.ok() && *version > kPostgresSchemaVersion) {
    s = FailedPrecondition(fmt::format(
        "PostgreSQL ({}): schema version {} is newer than this mailscope's {}; records are not "
        "written to it",
        display_, *version, kPostgresSchemaVersion));
  } else if (version.ok() && *version < 1) {
    s = Exec(kSchemaV1);
    if (s.ok()) s = Exec("DELETE FROM mailscope_schema; INSERT INTO mailscope_schema VALUES (1)");
  } else if (!version.ok()) {
    s = version.status();
  }
  if (!s.ok()) {
    if (conn_ != nullptr) (void)Exec("ROLLBACK");
    if (conn_ != nullptr) {
      Pq().finish(conn_);  // unusable until migrated
      conn_ = nullptr;
    }
    return s;
  }
  return Exec("COMMIT");
}

Status PostgresStore::Insert(std::span<const RecordView> records) {
  Status s = InsertBatch(records);
  if (s.ok() || conn_ == nullptr || Pq().status(conn_) != CONNECTION_OK) return s;
  // The server is there but refused the batch: a record it cannot take must
  // not hold up the others forever. One at a time, each its own
  // transaction; those refused again are counted and left out.
  for (const RecordView& r : records) {
    Status one = InsertBatch(std::span<const RecordView>(&r, 1));
    if (one.ok()) continue;
    if (conn_ == nullptr || Pq().status(conn_) != CONNECTION_OK) return one;
    if (rejected_.fetch_add(1, std::memory_order_relaxed) < 10)
      spdlog::warn("records: {} (a {} record refused; it is left out)", one.message(), r.event);
  }
  return Status::Ok();
}

Status PostgresStore::InsertBatch(std::span<const RecordView> records) {
  if (conn_ == nullptr) MS_RETURN_IF_ERROR(Connect());
  // At most 65535 parameters a statement: 3,000 rows of 17.
  constexpr std::size_t kRowsPerStatement = 3000;
  MS_RETURN_IF_ERROR(Exec("BEGIN"));
  std::deque<std::string> keep;  // stable: params point into it
  std::vector<const char*> params;
  std::string sql;
  for (std::size_t first = 0; first < records.size(); first += kRowsPerStatement) {
    const std::size_t rows = std::min(kRowsPerStatement, records.size() - first);
    keep.clear();
    params.clear();
    sql = kInsertColumns;
    for (std::size_t i = 0; i < rows; ++i) {
      const RecordView& r = records[first + i];
      sql += i == 0 ? "(" : ",(";
      for (int c = 1; c <= kColumnsPerRow; ++c) {
        fmt::format_to(std::back_inserter(sql), "{}${}", c == 1 ? "" : ",",
                       i * kColumnsPerRow + static_cast<std::size_t>(c));
      }
      sql += ')';
      keep.push_back(std::to_string(static_cast<std::int64_t>(r.stream)));
      params.push_back(keep.back().c_str());
      keep.push_back(std::to_string(static_cast<std::int64_t>(r.seq)));
      params.push_back(keep.back().c_str());
      keep.push_back(Rfc3339(r.time_us));
      params.push_back(keep.back().c_str());
      params.push_back(SourceName(r.source).data());  // NUL-terminated literals
      keep.push_back(Printable(r.event));
      params.push_back(keep.back().c_str());
      params.push_back(LevelName(r.level).data());
      for (std::string_view v :
           {r.kind, r.outcome, r.remote_ip, r.user, r.sender, r.recipient, r.domain, r.message_id})
        params.push_back(Column(v, true, keep));
      params.push_back(Column(r.categories, true, keep));
      params.push_back(Column(r.fields, false, keep));
      params.push_back(Column(r.units, true, keep));
    }
    sql += " ON CONFLICT (stream, seq) DO NOTHING";
    ResultHolder res(Pq().execParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                                     params.data(), nullptr, nullptr, 0));
    if (Pq().resultStatus(res.r) != PGRES_COMMAND_OK) {
      Status s = Fail("INSERT");
      if (conn_ != nullptr) (void)Exec("ROLLBACK");
      return s;
    }
  }
  return Exec("COMMIT");
}

Result<std::uint64_t> PostgresStore::DeleteBefore(std::int64_t time_us, std::uint64_t limit) {
  if (conn_ == nullptr) MS_RETURN_IF_ERROR(Connect());
  const std::string cutoff = Rfc3339(time_us);
  const std::string n = std::to_string(limit);
  const char* params[] = {cutoff.c_str(), n.c_str()};
  ResultHolder r(
      Pq().execParams(conn_,
                      "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time < "
                      "$1::timestamptz ORDER BY time LIMIT $2::bigint)",
                      2, nullptr, params, nullptr, nullptr, 0));
  if (Pq().resultStatus(r.r) != PGRES_COMMAND_OK) return Fail("retention delete");
  return std::strtoull(Pq().cmdTuples(r.r), nullptr, 10);
}

Result<std::uint64_t> PostgresStore::TrimToSize(std::uint64_t max_bytes,
                                                const std::function<void()>& between_chunks) {
  if (conn_ == nullptr) MS_RETURN_IF_ERROR(Connect());
  ResultHolder size(
      Pq().exec(conn_, "SELECT pg_total_relation_size('events'), count(*) FROM events"));
  if (Pq().resultStatus(size.r) != PGRES_TUPLES_OK) return Fail("measuring the table");
  const std::uint64_t bytes = std::strtoull(Pq().getvalue(size.r, 0, 0), nullptr, 10);
  const std::uint64_t rows = std::strtoull(Pq().getvalue(size.r, 0, 1), nullptr, 10);
  if (bytes <= max_bytes || rows == 0) return std::uint64_t{0};
  std::uint64_t want = rows / 10 + 1, deleted = 0;
  while (deleted < want) {
    auto went = DeleteBefore(INT64_MAX, std::min<std::uint64_t>(want - deleted, 10'000));
    if (!went.ok()) return went.status();
    deleted += *went;
    if (*went == 0) break;
    between_chunks();
  }
  MS_RETURN_IF_ERROR(ReleaseSpace());
  return deleted;
}

Status PostgresStore::ReleaseSpace() { return Exec("VACUUM events"); }

Status PostgresStore::DistinctEvents(std::vector<std::string>& out) {
  if (conn_ == nullptr) MS_RETURN_IF_ERROR(Connect());
  // A skip scan of the (source, event, time) index: one seek a name.
  for (int i = 0; i < kSourceCount; ++i) {
    std::string last;
    const std::string source(SourceName(static_cast<Source>(i)));
    for (;;) {
      const char* params[] = {source.c_str(), last.c_str()};
      ResultHolder r(Pq().execParams(conn_,
                                     "SELECT event FROM events WHERE source = $1 AND event > $2 "
                                     "ORDER BY event LIMIT 1",
                                     2, nullptr, params, nullptr, nullptr, 0));
      if (Pq().resultStatus(r.r) != PGRES_TUPLES_OK) return Fail("reading the event names");
      if (Pq().ntuples(r.r) == 0) break;
      last = Value(r.r, 0, 0);
      out.push_back(last);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return Status::Ok();
}

Result<std::uint64_t> PostgresStore::RowCount() {
  if (conn_ == nullptr) MS_RETURN_IF_ERROR(Connect());
  ResultHolder r(Pq().exec(conn_, "SELECT count(*) FROM events"));
  if (Pq().resultStatus(r.r) != PGRES_TUPLES_OK) return Fail("counting rows");
  return std::strtoull(Pq().getvalue(r.r, 0, 0), nullptr, 10);
}

Status PostgresStore::Read(const RecordQuery& query,
                           const std::function<bool(const RecordView&)>& row) {
  if (conn_ == nullptr) MS_RETURN_IF_ERROR(Connect());
  std::deque<std::string> keep = {Rfc3339(query.since_us), Rfc3339(query.until_us)};
  std::string sql =
      std::string(kSelectColumns) + " WHERE time >= $1::timestamptz AND time < $2::timestamptz";
  if (!query.events.empty()) {
    sql += " AND event IN (";
    for (std::size_t i = 0; i < query.events.size(); ++i) {
      fmt::format_to(std::back_inserter(sql), "{}${}", i == 0 ? "" : ",", i + 3);
      keep.push_back(query.events[i]);
    }
    sql += ")";
  }
  for (const RecordQuery::Equals& e : query.equals) {
    if (e.column != "remote_ip" && e.column != "user" && e.column != "message_id")
      return InvalidArgument(fmt::format("no index on {}", e.column));
    // lower() folds more than ASCII: a superset, which the filter narrows.
    keep.push_back(e.value);
    fmt::format_to(std::back_inserter(sql), " AND lower(\"{}\") = lower(${})", e.column,
                   keep.size());
  }
  sql += query.newest_first ? " ORDER BY time DESC, id DESC" : " ORDER BY time, id";
  std::vector<const char*> params;
  for (const std::string& k : keep) params.push_back(k.c_str());
  if (!Pq().sendQueryParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                            params.data(), nullptr, nullptr, 0))
    return Fail("querying");
  Pq().setSingleRowMode(conn_);  // rows as they come, not the whole result in memory
  bool wanted = true;
  bool cancelled = false;
  Status status;
  RecordView r;
  for (;;) {
    PGresult* res = Pq().getResult(conn_);
    if (res == nullptr) break;
    ResultHolder holder(res);
    const ExecStatusType st = Pq().resultStatus(res);
    if (st == PGRES_TUPLES_OK) continue;  // the end of the rows
    if (st != PGRES_SINGLE_TUPLE) {
      if (status.ok() && !cancelled) status = Fail("reading records");
      continue;
    }
    if (!wanted) continue;  // cancelled; what was on its way is drained
    r.time_us = std::strtoll(Pq().getvalue(res, 0, 0), nullptr, 10);
    if (!ParseSourceName(Value(res, 0, 1), r.source)) continue;
    if (!ParseLevelName(Value(res, 0, 3), r.level)) r.level = Level::kInfo;
    r.event = Value(res, 0, 2);
    r.kind = Value(res, 0, 4);
    r.outcome = Value(res, 0, 5);
    r.remote_ip = Value(res, 0, 6);
    r.user = Value(res, 0, 7);
    r.sender = Value(res, 0, 8);
    r.recipient = Value(res, 0, 9);
    r.domain = Value(res, 0, 10);
    r.message_id = Value(res, 0, 11);
    r.categories = Value(res, 0, 12);
    r.fields = Value(res, 0, 13);
    r.units = Value(res, 0, 14);
    r.stream = static_cast<std::uint64_t>(std::strtoll(Pq().getvalue(res, 0, 15), nullptr, 10));
    r.seq = static_cast<std::uint64_t>(std::strtoll(Pq().getvalue(res, 0, 16), nullptr, 10));
    wanted = row(r);
    if (!wanted) {
      // Enough: the server stops sending, and the error it ends with is ours.
      if (PGcancel* cancel = Pq().getCancel(conn_); cancel != nullptr) {
        char err[256];
        Pq().cancel(cancel, err, sizeof err);
        Pq().freeCancel(cancel);
      }
      cancelled = true;
    }
  }
  return cancelled ? Status::Ok() : status;
}

}  // namespace mailscope::store
