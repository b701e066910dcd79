// records_sink_bench: the records sink's writer path on its own, into SQLite
// or PostgreSQL, and a store filled for `mailscope events` timings.
//
//   records_sink_bench --sqlite FILE | --database CONNINFO
//                      [--records N] [--batch B]      write N records, B per transaction
//   records_sink_bench --sqlite FILE --fill N [--days D]
//                      N records spread over D days (30), for query timings
//
// The records are Exim msg:delivery, msg:rcpt:defer and Dovecot auth events
// with the fields the shipped fragment sends (about 1 KB encoded), each with
// its own time, message id, address and user, encoded beforehand with the
// sink's own encoder. Writing pushes them all into a RecordsWriter (as the
// loop thread does, through a queue of serve's default 64 MiB; when it is
// full the pusher waits) and waits until the writer has committed the last
// one.
// It prints records/s over the wall time and records per CPU-second of this
// process less the pushing thread (the writer thread, SQLite's work, libpq's
// client side); a PostgreSQL server's own CPU is the caller's to measure.
#include <pthread.h>
#include <sys/resource.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "catalog/catalog.h"
#include "catalog/event_control.h"
#include "catalog/event_router.h"
#include "core/clock.h"
#include "store/postgres_store.h"
#include "store/record.h"
#include "store/records_writer.h"
#include "store/sqlite_store.h"

namespace {

using namespace mailscope;

struct Options {
  std::string sqlite;
  std::string database;
  std::uint64_t records = 200'000;
  std::uint64_t batch = 1000;
  std::uint64_t fill = 0;
  std::uint64_t days = 30;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "records_sink_bench: %s\nusage: records_sink_bench --sqlite FILE | --database "
               "CONNINFO [--records N] [--batch B] | --sqlite FILE --fill N [--days D]\n",
               why);
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--sqlite")
      o.sqlite = next();
    else if (a == "--database")
      o.database = next();
    else if (a == "--records")
      o.records = std::stoull(next());
    else if (a == "--batch")
      o.batch = std::stoull(next());
    else if (a == "--fill")
      o.fill = std::stoull(next());
    else if (a == "--days")
      o.days = std::stoull(next());
    else
      Usage(("unknown argument " + a).c_str());
  }
  if (o.sqlite.empty() == o.database.empty()) Usage("give one of --sqlite and --database");
  if (o.batch == 0 || o.records == 0) Usage("--records and --batch must be positive");
  return o;
}

double ThreadCpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double ProcessCpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Encodes `n` records, times from `start_us` `step_us` apart, into `out`.
void Generate(std::uint64_t n, std::int64_t start_us, std::int64_t step_us, std::string& out) {
  auto control = catalog::EventControl::Build(catalog::Catalog::Get(), {});
  catalog::EventRouter router(catalog::Catalog::Get(), std::move(*control));
  store::RecordEncoder encoder;
  const NameId delivery = InternName("msg:delivery");
  const NameId defer = InternName("msg:rcpt:defer");
  const NameId auth = InternName("auth_request_finished");
  auto key = [](const char* k) { return InternName(k); };
  char id[64], ip[64], user[64], domain[64];
  Event e;
  for (std::uint64_t i = 0; i < n; ++i) {
    e.Clear();
    e.time =
        TimePoint(std::chrono::microseconds(start_us + static_cast<std::int64_t>(i) * step_us));
    std::snprintf(id, sizeof id, "1xa%06llu-%06llu-1N", static_cast<unsigned long long>(i / 7),
                  static_cast<unsigned long long>(i % 1000003));
    std::snprintf(ip, sizeof ip, "10.%llu.%llu.%llu", static_cast<unsigned long long>(i % 7),
                  static_cast<unsigned long long>(i / 251 % 256),
                  static_cast<unsigned long long>(i % 251));
    std::snprintf(user, sizeof user, "user%llu@example%llu.org",
                  static_cast<unsigned long long>(i % 5003),
                  static_cast<unsigned long long>(i % 17));
    std::snprintf(domain, sizeof domain, "example%llu.org",
                  static_cast<unsigned long long>(i % 17));
    switch (i % 10) {
      case 0:
      case 1:  // a failed or good login
        e.source = Source::kDovecot;
        e.name = auth;
        e.Add(key("user"), Value::String(user));
        e.Add(key("remote_ip"), Value::String(ip));
        e.Add(key("success"), Value::String(i % 10 == 0 ? "no" : "yes"));
        e.Add(key("error"), Value::String(i % 10 == 0 ? "Password mismatch" : ""));
        e.Add(key("mechanism"), Value::String("PLAIN"));
        e.Add(key("service"), Value::String("imap"));
        e.Add(key("duration"),
              Value::Int(1500 + static_cast<std::int64_t>(i % 900)).WithUnit(Unit::kMicroseconds));
        e.categories.push_back(key("auth"));
        break;
      case 2:  // a deferral
        e.source = Source::kExim;
        e.name = defer;
        e.Add(key("event_data"), Value::String("451 4.7.1 Greylisted, try again later"));
        e.Add(key("event_defer_errno"), Value::Int(13121));
        e.Add(key("smtp_code"), Value::Int(451));
        [[fallthrough]];
      default:  // a delivery
        e.source = Source::kExim;
        if (i % 10 != 2) {
          e.name = delivery;
          e.Add(key("event_data"),
                Value::String("250- 461 byte chunk, total 461\n250 OK id=1xaInK-00045f-1S"));
        }
        e.Add(key("hook"), Value::String("transport"));
        e.Add(key("message_exim_id"), Value::String(id));
        e.Add(key("sender_address"), Value::String("alice@test.local"));
        e.Add(key("message_size"), Value::Int(445 + static_cast<std::int64_t>(i % 5000)));
        e.Add(key("domain"), Value::String(domain));
        e.Add(key("local_part"), Value::String("user"));
        e.Add(key("host"), Value::String("mx.example.org"));
        e.Add(key("host_address"), Value::String(ip));
        e.Add(key("host_port"), Value::Int(25));
        e.Add(key("router_name"), Value::String("dnslookup"));
        e.Add(key("transport_name"), Value::String("remote_smtp"));
        e.Add(key("tls_out_ver"), Value::String("TLS1.3"));
        e.Add(key("tls_out_cipher"),
              Value::String("TLS1.3:ECDHE_SECP256R1__RSA_PSS_RSAE_SHA256__AES_256_GCM:256"));
        e.Add(key("tls_out_peerdn"), Value::String("CN=mx.example.org"));
        e.Add(key("sender_host_address"), Value::String("127.0.0.1"));
        e.Add(key("received_ip_address"), Value::String("127.0.0.1"));
        e.Add(key("received_port"), Value::Int(25));
        e.Add(key("queue_time"), Value::Int(1200).WithUnit(Unit::kMilliseconds));
        e.Add(key("pid"), Value::Int(15725));
        break;
    }
    e.taxonomy = router.Route(e).taxonomy;
    encoder.Append(e, 1, i, out);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  const std::uint64_t n = o.fill > 0 ? o.fill : o.records;
  const std::int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  const std::int64_t span_us = static_cast<std::int64_t>(o.days) * 86'400'000'000;
  const std::int64_t step =
      o.fill > 0 ? std::max<std::int64_t>(span_us / static_cast<std::int64_t>(n), 1) : 1;
  std::string data;
  data.reserve(n * 1100);
  Generate(n, now_us - static_cast<std::int64_t>(n) * step, step, data);

  std::unique_ptr<store::RecordStore> db;
  if (!o.sqlite.empty()) {
    auto s = store::SqliteStore::Open(o.sqlite, store::SqliteStore::Mode::kReadWrite);
    if (!s.ok()) {
      std::fprintf(stderr, "records_sink_bench: %s\n", s.status().message().c_str());
      return 1;
    }
    db = std::move(*s);
  } else {
    auto p = store::PostgresStore::Open(o.database, false);
    if (!p.ok() || !(*p)->Connect().ok()) {
      std::fprintf(stderr, "records_sink_bench: cannot use %s\n", o.database.c_str());
      return 1;
    }
    db = std::move(*p);
  }
  store::RecordsWriterOptions options;
  options.batch_size = o.batch;
  // The queue of `mailscope serve` ([records] queue_size): a full queue
  // makes the pushing thread wait here, where serve would drop.
  options.queue_bytes = 64u << 20;
  options.max_age = {};
  SystemClock clock;
  const double cpu0 = ProcessCpu();
  const double push_cpu0 = ThreadCpu();
  const auto t0 = std::chrono::steady_clock::now();
  store::RecordsWriter writer(std::move(db), nullptr, options, clock);
  std::size_t at = 0;
  store::RecordView r;
  std::size_t size = 0;
  while (at < data.size() &&
         store::DecodeRecord(std::string_view(data).substr(at), r, &size).ok()) {
    while (!writer.Push(std::string_view(data).substr(at, size)))
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    at += size;
  }
  const double push_cpu = ThreadCpu() - push_cpu0;
  while (writer.figures().written < n && writer.figures().database_errors == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = ProcessCpu() - cpu0 - push_cpu;
  const store::RecordsFigures f = writer.figures();
  writer.Stop();
  std::printf(
      "store=%s batch=%llu records=%llu written=%llu batches=%llu errors=%llu bytes=%zu "
      "wall_s=%.3f "
      "records_per_s=%.0f writer_cpu_s=%.3f records_per_cpu_s=%.0f push_us_per_record=%.3f\n",
      o.sqlite.empty() ? "postgres" : "sqlite", static_cast<unsigned long long>(o.batch),
      static_cast<unsigned long long>(n), static_cast<unsigned long long>(f.written),
      static_cast<unsigned long long>(f.batches),
      static_cast<unsigned long long>(f.database_errors), data.size(), wall,
      static_cast<double>(f.written) / wall, cpu,
      cpu > 0 ? static_cast<double>(f.written) / cpu : 0.0,
      push_cpu * 1e6 / static_cast<double>(n));
  return f.written == n ? 0 : 1;
}
