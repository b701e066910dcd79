// `mailscope events`: the records `mailscope serve` kept ([records]), read
// back from the SQLite file under the data directory.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/record_stores.h"
#include "export/event_text.h"
#include "export/json_writer.h"
#include "filter/analysis.h"
#include "filter/filter.h"
#include "serve/config.h"
#include "store/postgres_store.h"
#include "store/record_event.h"
#include "store/sqlite_store.h"

namespace mailscope::cli {
namespace {

struct EventsFlags {
  std::string data_dir;
  std::string database;
  std::string file;
  std::string filter;
  std::string since;
  std::string until;
  std::uint64_t limit = 0;
  bool json = false;
  std::string format = "text";
};

// "2h", "90s", "15m", "7d", "1w": that long before now, in microseconds.
std::optional<std::int64_t> ParseRelative(std::string_view s, std::int64_t now_us) {
  if (s == "now") return now_us;
  if (s.size() < 2) return std::nullopt;
  const char unit = s.back();
  std::int64_t n = 0;
  for (char c : s.substr(0, s.size() - 1)) {
    if (c < '0' || c > '9' || n > 1'000'000'000) return std::nullopt;
    n = n * 10 + (c - '0');
  }
  std::int64_t seconds;
  switch (unit) {
    case 's':
      seconds = 1;
      break;
    case 'm':
      seconds = 60;
      break;
    case 'h':
      seconds = 3600;
      break;
    case 'd':
      seconds = 86400;
      break;
    case 'w':
      seconds = 7 * 86400;
      break;
    default:
      return std::nullopt;
  }
  return now_us - n * seconds * 1'000'000;
}

// RFC 3339 and its usual relatives: "2026-12-06T10:00:00Z",
// "2026-12-06T10:00:00.5+01:00", "2026-12-06 10:00:00" and "2026-12-06"
// (UTC when no offset is given).
std::optional<std::int64_t> ParseAbsolute(std::string_view s) {
  int y, mo, d, h = 0, mi = 0, sec = 0, consumed = 0;
  std::string text(s);
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &consumed) != 3 || consumed != 10)
    return std::nullopt;
  std::string_view rest = s.substr(10);
  std::int64_t micros = 0;
  if (!rest.empty()) {
    if (rest[0] != 'T' && rest[0] != 't' && rest[0] != ' ') return std::nullopt;
    std::string tail(rest.substr(1));
    if (std::sscanf(tail.c_str(), "%2d:%2d:%2d%n", &h, &mi, &sec, &consumed) != 3 || consumed != 8)
      return std::nullopt;
    rest = rest.substr(9);
    if (!rest.empty() && rest[0] == '.') {
      std::size_t i = 1;
      std::int64_t scale = 100'000;
      while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') {
        micros += (rest[i] - '0') * scale;
        scale /= 10;
        ++i;
      }
      if (i == 1) return std::nullopt;
      rest = rest.substr(i);
    }
  }
  std::int64_t offset = 0;
  if (rest == "Z" || rest == "z" || rest.empty()) {
  } else if ((rest[0] == '+' || rest[0] == '-') && rest.size() == 6 && rest[3] == ':') {
    int oh, om;
    std::string off(rest.substr(1));
    if (std::sscanf(off.c_str(), "%2d:%2d", &oh, &om) != 2) return std::nullopt;
    offset = (rest[0] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
  } else {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year(y), std::chrono::month(mo),
                                        std::chrono::day(d)};
  if (!ymd.ok()) return std::nullopt;
  const std::int64_t days = std::chrono::sys_days(ymd).time_since_epoch().count();
  return ((days * 86400 + h * 3600 + mi * 60 + sec) - offset) * 1'000'000 + micros;
}

std::optional<std::int64_t> ParseTime(std::string_view s, std::int64_t now_us) {
  if (auto t = ParseRelative(s, now_us)) return t;
  return ParseAbsolute(s);
}

void AppendJsonRecord(std::string& out, const store::RecordView& r) {
  out += "{\"time\":\"";
  store::AppendRfc3339(out, r.time_us);
  out += "\",\"source\":";
  exporter::AppendJsonString(out, SourceName(r.source));
  out += ",\"event\":";
  exporter::AppendJsonString(out, r.event);
  out += ",\"level\":";
  exporter::AppendJsonString(out, LevelName(r.level));
  const std::pair<std::string_view, std::string_view> columns[] = {
      {"kind", r.kind},     {"outcome", r.outcome},      {"remote_ip", r.remote_ip},
      {"user", r.user},     {"sender", r.sender},        {"recipient", r.recipient},
      {"domain", r.domain}, {"message_id", r.message_id}};
  for (const auto& [name, value] : columns) {
    if (value.empty()) continue;
    out += ',';
    exporter::AppendJsonString(out, name);
    out += ':';
    // Columns are the source's bytes: written as the fields write them.
    store::AppendJsonBytes(out, value);
  }
  if (!r.categories.empty()) {
    out += ",\"categories\":";
    out += r.categories;
  }
  out += ",\"fields\":";
  out += r.fields;
  if (!r.units.empty()) {
    out += ",\"units\":";
    out += r.units;
  }
  out += '}';
}

void AppendTableRow(std::string& out, const store::RecordView& r) {
  std::string time;
  store::AppendRfc3339(time, r.time_us);
  std::string what(r.kind);
  if (!r.outcome.empty()) what += "/" + std::string(r.outcome);
  auto cell = [](std::string_view v) { return v.empty() ? std::string_view("-") : v; };
  fmt::format_to(std::back_inserter(out), "{:<27} {:<9} {:<28} {:<22} {:<15} {:<20} {}", time,
                 SourceName(r.source), r.event, cell(what), cell(r.remote_ip),
                 cell(r.user.empty() ? r.recipient : r.user), cell(r.message_id));
}

// The event names a single-query filter can match among `names`, or all of
// them when it cannot tell (several queries, no event comparison).
std::vector<std::string> EventsThatCanMatch(const filter::Filter& f,
                                            const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const std::string& name : names) {
    Event probe;
    probe.name = InternName(name);
    bool possible = false;
    for (std::size_t q = 0; q < f.query_count() && !possible; ++q) {
      const filter::Truth t = filter::Evaluate(f, q, [&](const filter::Leaf& leaf) {
        if (leaf.type() != filter::Leaf::Type::kEvent) return filter::Truth::kUnknown;
        return leaf.Matches(probe) ? filter::Truth::kTrue : filter::Truth::kFalse;
      });
      possible = t != filter::Truth::kFalse;
    }
    if (possible) out.push_back(name);
  }
  return out;
}

}  // namespace

std::string RecordsFileOf(const std::string& data_dir) {
  return store::SqlitePath(data_dir.empty() ? serve::DefaultDataDir() : data_dir);
}

Result<std::unique_ptr<store::RecordStore>> OpenStore(const std::string& database,
                                                      const std::string& sqlite_path) {
  if (database.empty()) {
    auto db = store::SqliteStore::Open(sqlite_path, store::SqliteStore::Mode::kReadOnly);
    if (!db.ok()) return db.status();
    return std::unique_ptr<store::RecordStore>(std::move(*db));
  }
  auto pg = store::PostgresStore::Open(database, false);
  if (!pg.ok()) return pg.status();
  MS_RETURN_IF_ERROR((*pg)->Connect(/*migrate=*/false));
  auto version = (*pg)->SchemaVersion();
  if (!version.ok()) return version.status();
  if (*version == 0)
    return FailedPrecondition(
        fmt::format("PostgreSQL ({}): no mailscope records there", (*pg)->display_name()));
  if (*version > store::kPostgresSchemaVersion)
    return FailedPrecondition(
        fmt::format("PostgreSQL ({}): schema version {} is newer than this mailscope's {}",
                    (*pg)->display_name(), *version, store::kPostgresSchemaVersion));
  return std::unique_ptr<store::RecordStore>(std::move(*pg));
}

namespace {

// Comparisons on an indexed column that every match of a single-query
// filter must pass: `user=bob` in `user=bob AND NOT event=x`, not in
// `user=bob OR kind=auth`. Only exact text (no wildcard, not a number, which
// the language compares as one) becomes an index lookup; the filter still
// tests every record the lookup gives.
std::vector<store::RecordQuery::Equals> RequiredEquals(const filter::Filter& f) {
  std::vector<store::RecordQuery::Equals> out;
  if (f.query_count() != 1) return out;
  std::vector<std::pair<std::string, std::string>> candidates;
  filter::AnyLeaf(f, 0, [&](const filter::Leaf& leaf) {
    const std::string_view key = leaf.key(), value = leaf.value();
    const bool indexed = key == "remote_ip" || key == "user" || key == "message_id";
    double number = 0;
    const auto parsed = std::from_chars(value.data(), value.data() + value.size(), number);
    const bool is_number = parsed.ec == std::errc() && parsed.ptr == value.data() + value.size();
    const bool exact =
        !value.empty() && value.find_first_of("*?") == std::string_view::npos && !is_number;
    if (leaf.type() == filter::Leaf::Type::kField && indexed && exact)
      candidates.emplace_back(key, value);
    return false;
  });
  for (const auto& candidate : candidates) {
    const auto& key = candidate.first;  // not a structured binding: lambdas capture it
    const auto& value = candidate.second;
    const filter::Truth t = filter::Evaluate(f, 0, [&](const filter::Leaf& leaf) {
      return leaf.key() == key && leaf.value() == value ? filter::Truth::kFalse
                                                        : filter::Truth::kUnknown;
    });
    if (t == filter::Truth::kFalse) {
      out.push_back({key, value});
      break;  // one index lookup is enough
    }
  }
  return out;
}

int Run(const EventsFlags& f) {
  const std::string path = !f.file.empty() ? f.file : RecordsFileOf(f.data_dir);
  auto parsed = filter::Parse(f.filter, filter::Dialect::kMailscope);
  if (!parsed.ok()) {
    fmt::print(stderr, "mailscope events: --filter: {}\n", parsed.status().message());
    return 2;
  }
  const filter::Filter& flt = *parsed;
  const std::int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  store::RecordQuery query;
  for (const auto& [flag, text, slot] : {std::tuple{"--since", &f.since, &query.since_us},
                                         std::tuple{"--until", &f.until, &query.until_us}}) {
    if (text->empty()) continue;
    auto t = ParseTime(*text, now_us);
    if (!t) {
      fmt::print(stderr,
                 "mailscope events: {} {}: expected RFC 3339 (2026-12-06T10:00:00Z), a date, "
                 "or a time ago such as 90s, 15m, 2h, 7d, 1w\n",
                 flag, *text);
      return 2;
    }
    *slot = *t;
  }
  auto db = OpenStore(f.database, path);
  if (!db.ok()) {
    fmt::print(stderr, "mailscope events: {}\n", db.status().message());
    return 1;
  }
  if (!flt.empty()) {
    std::vector<std::string> names;
    Status s = (*db)->DistinctEvents(names);
    if (!s.ok()) {
      fmt::print(stderr, "mailscope events: {}\n", s.message());
      return 1;
    }
    std::vector<std::string> wanted = EventsThatCanMatch(flt, names);
    if (wanted.empty()) return 0;
    if (wanted.size() < names.size()) query.events = std::move(wanted);
    query.equals = RequiredEquals(flt);
  }
  query.newest_first = f.limit > 0;

  const bool json = f.json || f.format == "json";
  const bool table = !json && f.format == "table";
  store::RecordEventBuilder builder;
  Event event;
  std::string line;
  std::vector<std::string> newest;  // with --limit: the matches, newest first
  std::uint64_t matched = 0, corrupt = 0;
  bool out_closed = false;
  if (table) {
    fmt::print("{:<27} {:<9} {:<28} {:<22} {:<15} {:<20} {}\n", "TIME", "SOURCE", "EVENT",
               "KIND/OUTCOME", "REMOTE_IP", "USER/RECIPIENT", "MESSAGE_ID");
  }
  Status s = (*db)->Read(query, [&](const store::RecordView& r) {
    if (Status b = builder.Build(r, event); !b.ok()) {
      if (corrupt++ == 0) fmt::print(stderr, "mailscope events: {}\n", b.message());
      return true;
    }
    if (!flt.empty() && !flt.Matches(event)) return true;
    line.clear();
    if (json) {
      AppendJsonRecord(line, r);
    } else if (table) {
      AppendTableRow(line, r);
    } else {
      exporter::AppendEventText(event, line);
    }
    line += '\n';
    ++matched;
    if (f.limit > 0) {
      newest.push_back(line);
      return matched < f.limit;
    }
    if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size()) {
      out_closed = true;  // the reader went away (| head)
      return false;
    }
    return true;
  });
  for (auto it = newest.rbegin(); it != newest.rend() && !out_closed; ++it) {
    if (std::fwrite(it->data(), 1, it->size(), stdout) != it->size()) out_closed = true;
  }
  std::fflush(stdout);
  if (!s.ok()) {
    fmt::print(stderr, "mailscope events: {}\n", s.message());
    return 1;
  }
  if (corrupt > 0) {
    fmt::print(stderr, "mailscope events: {} records could not be read\n", corrupt);
    return 1;
  }
  return 0;
}

}  // namespace

void AddEventsCommand(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<EventsFlags>();
  CLI::App* cmd = app.add_subcommand(
      "events",
      "Print the events mailscope serve recorded ([records] in its configuration), oldest\n"
      "first, from DATA_DIR/records.sqlite or, with --database, from PostgreSQL. Works\n"
      "while serve runs.\n"
      "  mailscope events --filter 'event=\"msg:delivery\" AND domain=example.org' --since 2h\n"
      "  mailscope events --filter 'kind=auth AND outcome=failure' --limit 20 --format table\n"
      "  mailscope events --filter 'remote_ip=192.0.2.*' --json | jq .fields\n"
      "The filter is mailscope's event filter language (docs/filter.md), tested on each\n"
      "record as on a live event: fields, categories, kind, outcome and units all work.");
  cmd->add_option("--data-dir", f->data_dir,
                  "Data directory of mailscope serve (default: as serve)");
  cmd->add_option("--file", f->file, "A records file to read (default: DATA_DIR/records.sqlite)");
  cmd->add_option("--database", f->database,
                  "Read from PostgreSQL instead: the conninfo of [records] database, "
                  "postgresql://USER@HOST/DB or \"host=... dbname=...\"");
  cmd->add_option("-f,--filter", f->filter, "Event filter (mailscope's language, with units)");
  cmd->add_option("--since", f->since,
                  "Records at or after this time: RFC 3339 (2026-12-06T10:00:00Z; no offset "
                  "means UTC), a date, or a time ago (90s, 15m, 2h, 7d, 1w)");
  cmd->add_option("--until", f->until, "Records before this time (same forms as --since)");
  cmd->add_option("-n,--limit", f->limit,
                  "Print the newest N matching records (still oldest first); 0: all");
  cmd->add_flag("--json", f->json,
                "One JSON object per line: time (RFC 3339), source, event, level, the "
                "normalized columns present, categories, fields, units");
  cmd->add_option("--format", f->format,
                  "text (as mailscope tail prints events), table, or json (as --json)")
      ->check(CLI::IsMember({"text", "table", "json"}));
  cmd->callback([f, &exit_code] {
    std::signal(SIGPIPE, SIG_IGN);
    exit_code = Run(*f);
  });
}

}  // namespace mailscope::cli
