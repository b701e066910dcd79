// PostgresStore: the records in PostgreSQL, through libpq ([records]
// database = "postgresql://...").
//
// Schema version 1, made and migrated by mailscope (`mailscope records
// migrate`, and at every connection):
//
//   CREATE TABLE mailscope_schema (version integer NOT NULL);
//   CREATE TABLE events (
//     id bigserial PRIMARY KEY,
//     stream bigint NOT NULL, seq bigint NOT NULL,   -- the record's key
//     time timestamptz NOT NULL,
//     source text NOT NULL, event text NOT NULL, level text NOT NULL,
//     kind text, outcome text, remote_ip text, "user" text, sender text,
//     recipient text, domain text, message_id text,
//     categories json, fields json NOT NULL, units json,
//     UNIQUE (stream, seq));
//
// with indexes on time, (source, event, time), (remote_ip, time),
// ("user", time) and (message_id, time), the last three partial, on
// lower() as the filter language folds case. `json` rather than `jsonb`
// keeps the fields exactly as written, in their order. PostgreSQL's text
// holds neither NUL nor bytes that are not UTF-8: a normalized column with
// such a value is NULL (the value is in `fields`, as base64); an event name
// with them has each such byte replaced by U+FFFD.
//
// Inserts are multi-row INSERT ... ON CONFLICT (stream, seq) DO NOTHING
// statements with parameters only ($1, $2, ...), one transaction per batch:
// a batch sent again after its commit was lost is kept once.
//
// TrimToSize() measures pg_total_relation_size('events'); over the
// limit, the oldest 10% of the rows go and VACUUM makes their space
// reusable. PostgreSQL does not give the space back to the file system, so
// the table stays near its high-water mark: the limit bounds its growth.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "store/record_store.h"

struct pg_conn;

namespace mailscope::store {

inline constexpr int kPostgresSchemaVersion = 1;

class PostgresStore : public RecordStore {
 public:
  // Keeps `conninfo` (a postgresql:// URL or libpq's key=value form) and
  // connects. With `connect_now` false, or when the database is away, the
  // store starts unconnected: Reconnect() connects (the writer spools
  // meanwhile). An error only for a conninfo libpq cannot parse.
  static Result<std::unique_ptr<PostgresStore>> Open(const std::string& conninfo, bool connect_now);
  ~PostgresStore() override;

  // Connects and, with `migrate`, makes or migrates the schema: the status
  // of that connection.
  Status Connect(bool migrate = true);

  // A batch the server refuses while the connection stays up is written
  // again a record at a time; what it refuses then is left out and counted
  // in rejected().
  Status Insert(std::span<const RecordView> records) override;
  std::uint64_t rejected() const override { return rejected_.load(std::memory_order_relaxed); }
  bool Remote() const override { return true; }
  Status Reconnect() override { return Connect(); }
  Result<std::uint64_t> DeleteBefore(std::int64_t time_us, std::uint64_t limit) override;
  Result<std::uint64_t> TrimToSize(std::uint64_t max_bytes,
                                   const std::function<void()>& between_chunks) override;
  Status ReleaseSpace() override;
  Status DistinctEvents(std::vector<std::string>& out) override;
  Status Read(const RecordQuery& query, const std::function<bool(const RecordView&)>& row) override;
  Result<std::uint64_t> RowCount() override;

  // The schema version in the database (0: none yet).
  Result<int> SchemaVersion();
  // The conninfo with any password left out, for messages.
  const std::string& display_name() const { return display_; }

 private:
  explicit PostgresStore(std::string conninfo, std::string display)
      : conninfo_(std::move(conninfo)), display_(std::move(display)) {}
  Status Migrate();
  Status InsertBatch(std::span<const RecordView> records);
  Status Exec(const char* sql);
  Status Fail(std::string_view what);

  std::string conninfo_;
  std::string display_;
  pg_conn* conn_ = nullptr;
  std::atomic<std::uint64_t> rejected_{0};
};

// A postgresql:// URL or key=value conninfo with its password removed.
std::string RedactConninfo(const std::string& conninfo);

}  // namespace mailscope::store
