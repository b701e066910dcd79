// `mailscope replay`: old logs through the same decoders, pipeline and
// metrics as `mailscope serve` uses for live ones, then a report.
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/event_router.h"
#include "cli/commands.h"
#include "cli/log_report.h"
#include "core/time_zone.h"
#include "export/dovecot_metrics.h"
#include "export/openmetrics.h"
#include "ingest/log_lines.h"
#include "ingest/log_reader.h"
#include "pipeline/dispatcher.h"
#include "serve/config.h"
#include "serve/metrics_page.h"
#include "serve/outputs.h"
#include "stats/ingest_counters.h"
#include "stats/metrics_engine.h"

namespace mailscope::cli {
namespace {

struct ReplayFlags {
  std::vector<std::string> files;
  std::string format = "auto";
  std::string time_zone;
  std::string config;
  bool json = false;
  bool openmetrics = false;
  bool show_unparsed = false;
  std::string progress = "auto";
  std::size_t top = 20;
};

using SteadyClock = std::chrono::steady_clock;

// A progress bar on stderr: bytes done of the total, bytes/s and ETA,
// redrawn at most five times a second.
class Progress {
 public:
  Progress(bool enabled, std::uint64_t total) : enabled_(enabled), total_(total) {}
  void Update(std::uint64_t done, std::string_view file) {
    if (!enabled_) return;
    const auto now = SteadyClock::now();
    if (now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    Draw(done, file);
  }
  void Finish(std::uint64_t done) {
    if (!enabled_) return;
    Draw(done, {});
    std::fputs("\n", stderr);
  }

 private:
  void Draw(std::uint64_t done, std::string_view file) {
    const double seconds = std::chrono::duration<double>(SteadyClock::now() - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
    const double fraction =
        total_ > 0 ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total_)) : 0;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    std::string bar(static_cast<std::size_t>(filled), '=');
    bar.resize(kWidth, ' ');
    std::string eta = "--:--";
    if (rate > 0 && total_ > done) {
      const auto left = static_cast<long>(static_cast<double>(total_ - done) / rate);
      eta = fmt::format("{}:{:02}", left / 60, left % 60);
    }
    std::fprintf(stderr, "\r[%s] %3.0f%% %8.1f MB/s ETA %s %-30.30s", bar.c_str(), fraction * 100,
                 rate / 1e6, eta.c_str(), std::string(file).c_str());
    std::fflush(stderr);
  }

  bool enabled_;
  std::uint64_t total_;
  SteadyClock::time_point start_ = SteadyClock::now();
  SteadyClock::time_point last_{};
};

// Everything a replay runs through: the pipeline with its metrics engine and
// the report as outputs.
struct ReplayPipeline {
  stats::IngestCounters counters;
  stats::MetricsEngine metrics;
  std::unique_ptr<pipeline::Dispatcher> dispatcher;
  std::unique_ptr<serve::MetricsOutput> metrics_output;
  LogReport report;
};

Status BuildPipeline(const ReplayFlags& flags, const std::string& format, ReplayPipeline& p) {
  serve::Config config;
  if (!flags.config.empty()) {
    auto loaded = serve::LoadConfigFile(flags.config);
    if (!loaded.ok()) return loaded.status();
    config = std::move(*loaded);
  }
  MS_RETURN_IF_ERROR(serve::AddShippedLogMetrics(format, config));
  auto router = catalog::MakeCatalogRouter(config.events);
  if (!router.ok()) return router.status();
  p.dispatcher = std::make_unique<pipeline::Dispatcher>(p.counters, std::move(*router));
  p.metrics_output = std::make_unique<serve::MetricsOutput>(p.metrics, *p.dispatcher);
  // Only what is printed is counted: the metrics for --openmetrics, the
  // report otherwise.
  if (flags.openmetrics) {
    p.dispatcher->Register("metrics", *p.metrics_output);
  } else {
    p.dispatcher->Register("report", p.report);
  }
  for (const serve::MetricConfig& m : config.metrics) {
    MS_RETURN_IF_ERROR(p.metrics.Add(m.definition, stats::MetricsEngine::Origin::kConfig));
  }
  return Status::Ok();
}

std::string OpenMetricsText(const ReplayPipeline& p, std::string_view format,
                            const ingest::LogLineFigures& lines) {
  exporter::MetricsWriter w(exporter::MetricsFormat::kOpenMetrics);
  const serve::LogLineSample sample[] = {{format, &lines}};
  serve::RenderLogLineFamilies(sample, w);
  w.Family("mailscope_events", "counter",
           "Events accepted, by source and the source's own event name");
  p.counters.ForEachEvent([&](Source s, NameId name, std::uint64_t n) {
    w.Sample({{"source", SourceName(s)}, {"event", NameText(name)}}, n);
  });
  exporter::RenderMetrics(p.metrics, w);
  return w.Finish();
}

// Longest line taken, as `serve`'s max_line_size default: a longer one is
// cut there and its rest skipped, so a file without line ends (a binary given
// by mistake) is not held whole.
constexpr std::size_t kMaxLineBytes = 1u << 20;

// The block read at a time, the text of one batch. Larger blocks saved no
// time and cost memory (see BatchQueue).
constexpr std::size_t kReadBlockBytes = 256u << 10;

// One line as the reading thread decoded it.
struct DecodedLine {
  bool ok = false;
  Source source = Source::kQmailLog;
  NameId name = kNoName;
  TimePoint time{};
  std::uint32_t field_begin = 0;
  std::uint32_t field_count = 0;
  // Unparsed lines: where, and why.
  std::uint32_t file = 0;
  std::uint64_t line_no = 0;
  std::string_view reason;  // a static label
  std::string message;      // with --show-unparsed only
};

// Decoded lines with the text their fields point into.
struct Batch {
  std::string text;
  std::vector<Field> fields;
  std::vector<DecodedLine> lines;
  std::uint32_t file = 0;
  std::uint64_t input_done = 0;  // input bytes (compressed) consumed so far
  void Clear() {
    text.clear();
    fields.clear();
    lines.clear();
  }
};

// Batches from the reading thread to the dispatching one: at most kDepth
// wait, so the reader is never far ahead; used batches go back for reuse.
// A batch holds its block's text, lines and fields (about 1.2 MB for a
// 256 KiB block of s/qmail lines), so the batches in flight are most of the
// memory the run touches: with 1 MiB blocks and 4 waiting, their first
// touch was 7,000 page faults of the 1M-line benchmark log's 8,800.
class BatchQueue {
 public:
  static constexpr std::size_t kDepth = 2;

  std::unique_ptr<Batch> Take() {
    std::lock_guard lock(mu_);
    if (free_.empty()) return std::make_unique<Batch>();
    std::unique_ptr<Batch> b = std::move(free_.back());
    free_.pop_back();
    b->Clear();
    return b;
  }
  // False when the dispatching side has gone (Cancel): stop reading.
  bool Push(std::unique_ptr<Batch> b) {
    std::unique_lock lock(mu_);
    room_.wait(lock, [&] { return ready_.size() < kDepth || cancelled_; });
    if (cancelled_) return false;
    ready_.push_back(std::move(b));
    filled_.notify_one();
    return true;
  }
  // The dispatching side leaves (an error, an exception): the reader ends.
  void Cancel() {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    room_.notify_all();
  }
  // nullptr once the reader is done and everything was taken.
  std::unique_ptr<Batch> Pop() {
    std::unique_lock lock(mu_);
    filled_.wait(lock, [&] { return !ready_.empty() || done_; });
    if (ready_.empty()) return nullptr;
    std::unique_ptr<Batch> b = std::move(ready_.front());
    ready_.pop_front();
    room_.notify_one();
    return b;
  }
  void Recycle(std::unique_ptr<Batch> b) {
    std::lock_guard lock(mu_);
    free_.push_back(std::move(b));
  }
  void Finish(std::string error, std::uint64_t bytes, std::uint64_t lines,
              std::uint64_t input_done) {
    std::lock_guard lock(mu_);
    error_ = std::move(error);
    bytes_ = bytes;
    lines_ = lines;
    input_done_ = input_done;
    done_ = true;
    filled_.notify_all();
  }
  // After Pop() gave nullptr.
  const std::string& error() const { return error_; }
  std::uint64_t bytes() const { return bytes_; }
  std::uint64_t lines() const { return lines_; }
  std::uint64_t input_done() const { return input_done_; }

 private:
  std::mutex mu_;
  std::condition_variable room_, filled_;
  std::deque<std::unique_ptr<Batch>> ready_;
  std::vector<std::unique_ptr<Batch>> free_;
  bool done_ = false;
  bool cancelled_ = false;
  std::string error_;
  std::uint64_t bytes_ = 0, lines_ = 0, input_done_ = 0;
};

// The reading thread: every file in order, cut into lines, each line's
// prefix and text decoded (LogLines::DecodeLine), in batches of about a
// read block. `held` bytes of `buffer` were read from file `held_file`
// already (format sniffing); the files before it were empty.
void ReadAndDecode(const ReplayFlags& flags, std::vector<ingest::LogReader>& readers,
                   std::vector<char> buffer, std::size_t held, std::size_t held_file,
                   ingest::LogLines& lines, TimePoint now, BatchQueue& queue) {
  std::uint64_t bytes = 0, line_count = 0, done_before = 0;
  std::string carry;  // a line cut by the end of a read
  bool cut = false;   // carry holds kMaxLineBytes of a longer line: the rest is skipped
  // Appends `part` of the unfinished line to carry, at most kMaxLineBytes.
  auto keep_partial = [&](std::string_view part, std::uint32_t file, std::uint64_t line_no) {
    if (cut || part.empty()) return;
    if (carry.size() + part.size() > kMaxLineBytes) {
      part = part.substr(0, kMaxLineBytes - carry.size());
      cut = true;
      fmt::print(stderr, "mailscope replay: {}:{}: a line longer than {} bytes is cut there\n",
                 flags.files[file], line_no + 1, kMaxLineBytes);
    }
    carry.append(part);
  };
  Event event;
  std::unique_ptr<Batch> batch = queue.Take();
  auto decode = [&](std::string_view line, std::uint32_t file, std::uint64_t line_no) {
    ++line_count;
    DecodedLine& d = batch->lines.emplace_back();
    const Status st = lines.DecodeLine(line, now, event);
    d.ok = st.ok();
    if (!d.ok) {
      d.file = file;
      d.line_no = line_no;
      d.reason = st.reason();
      if (flags.show_unparsed) d.message = st.message();
      return;
    }
    d.source = event.source;
    d.name = event.name;
    d.time = event.time;
    d.field_begin = static_cast<std::uint32_t>(batch->fields.size());
    d.field_count = static_cast<std::uint32_t>(event.fields.size());
    batch->fields.insert(batch->fields.end(), event.fields.begin(), event.fields.end());
  };
  // Decodes the whole lines of batch->text, which ends with an LF.
  auto decode_text = [&](std::uint32_t file, std::uint64_t& line_no) {
    std::string_view rest = batch->text;
    while (!rest.empty()) {
      const std::size_t nl = rest.find('\n');
      decode(rest.substr(0, nl), file, ++line_no);
      rest.remove_prefix(nl + 1);
    }
  };
  for (std::size_t i = 0; i < readers.size(); ++i) {
    ingest::LogReader& reader = readers[i];
    const auto file = static_cast<std::uint32_t>(i);
    std::uint64_t line_no = 0;
    carry.clear();
    cut = false;
    for (;;) {
      std::size_t n = 0;
      if (held > 0 && i == held_file) {
        n = held;
        held = 0;
      } else {
        auto r = reader.Read(buffer);
        if (!r.ok()) {
          queue.Finish(r.status().message(), bytes, line_count, done_before);
          return;
        }
        n = *r;
      }
      if (n == 0) break;
      bytes += n;
      const std::string_view block(buffer.data(), n);
      const std::size_t first_nl = block.find('\n');
      if (first_nl == std::string_view::npos) {
        keep_partial(block, file, line_no);
        continue;
      }
      keep_partial(block.substr(0, first_nl), file, line_no);
      // The text of whole lines, copied: the fields point into it. Lines
      // within one block are shorter than kMaxLineBytes already.
      const std::size_t last_nl = block.rfind('\n');
      batch->text.assign(carry);
      batch->text += '\n';
      batch->text.append(block.substr(first_nl + 1, last_nl - first_nl));
      carry.clear();
      cut = false;
      keep_partial(block.substr(last_nl + 1), file, line_no);
      decode_text(file, line_no);
      batch->file = file;
      batch->input_done = done_before + reader.input_position();
      if (!queue.Push(std::move(batch))) return;
      batch = queue.Take();
    }
    if (!carry.empty()) {  // a last line without its LF
      batch->text.assign(carry);
      batch->text += '\n';
      decode_text(file, line_no);
    }
    done_before += reader.input_position();
    batch->file = file;
    batch->input_done = done_before;
    if (!queue.Push(std::move(batch))) return;
    batch = queue.Take();
  }
  queue.Finish({}, bytes, line_count, done_before);
}

int RunReplay(const ReplayFlags& flags) {
  // The zone of local times.
  TimeZone zone = TimeZone::System();
  if (!flags.time_zone.empty()) {
    auto z = TimeZone::Load(flags.time_zone);
    if (!z.ok()) {
      fmt::print(stderr, "mailscope replay: --time-zone: {}\n", z.status().message());
      return 2;
    }
    zone = std::move(*z);
  }
  // Open everything first: a wrong name fails before any work.
  std::vector<ingest::LogReader> readers;
  std::uint64_t total_bytes = 0;
  for (const std::string& file : flags.files) {
    auto r = ingest::LogReader::Open(file);
    if (!r.ok()) {
      fmt::print(stderr, "mailscope replay: {}\n", r.status().message());
      return 1;
    }
    total_bytes += r->input_size().value_or(0);
    readers.push_back(std::move(*r));
  }

  std::string format = flags.format;
  std::vector<char> buffer(kReadBlockBytes);
  std::size_t held = 0;       // bytes of the first read kept for sniffing
  std::size_t held_file = 0;  // the file those bytes are of
  if (format == "auto") {
    // The first lines of the first file that has any (a file just rotated
    // may be empty).
    // A pipe gives what is there: read on until some lines are in.
    constexpr std::size_t kSniffBytes = 64 << 10;
    for (held_file = 0; held_file < readers.size(); ++held_file) {
      for (;;) {
        auto n = readers[held_file].Read(std::span<char>(buffer).subspan(held));
        if (!n.ok()) {
          fmt::print(stderr, "mailscope replay: {}\n", n.status().message());
          return 1;
        }
        held += *n;
        if (*n == 0 || held >= kSniffBytes) break;
      }
      if (held > 0) break;
    }
    format = ingest::SniffLogFormat(std::string_view(buffer.data(), held));
    if (format.empty()) {
      fmt::print(stderr,
                 "mailscope replay: {}: cannot tell the log format from its first lines; "
                 "give --format\n",
                 held_file < flags.files.size() ? flags.files[held_file] : flags.files.front());
      return 1;
    }
  }
  auto log_format = ingest::MakeLogLineFormat(format);
  if (log_format == nullptr) {
    fmt::print(stderr, "mailscope replay: --format: unknown format \"{}\"\n", format);
    return 2;
  }
  ReplayPipeline p;
  if (Status st = BuildPipeline(flags, format, p); !st.ok()) {
    fmt::print(stderr, "mailscope replay: {}\n", st.message());
    return 1;
  }
  const TimePoint now = SystemClock().Now();
  ingest::LogLines lines(std::move(log_format), zone, now);
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  Progress progress(flags.progress == "always" || (flags.progress == "auto" && tty), total_bytes);

  const auto started = SteadyClock::now();
  LogReport::Input input;
  // Reading and decoding run on a thread of their own, a batch ahead of
  // the dispatch here (bench/run_qmail_replay_bench.sh: 1.6x the lines/s
  // of one thread on two cores).
  BatchQueue queue;
  std::jthread reader_thread([&] {
    ReadAndDecode(flags, readers, std::move(buffer), held, held_file, lines, now, queue);
  });
  // Destroyed before reader_thread: however this scope is left, the reader
  // is told to end before it is joined.
  struct CancelOnExit {
    BatchQueue& queue;
    ~CancelOnExit() { queue.Cancel(); }
  } cancel_on_exit{queue};
  Event event;
  for (;;) {
    std::unique_ptr<Batch> batch = queue.Pop();
    if (batch == nullptr) break;
    for (const DecodedLine& d : batch->lines) {
      if (d.ok) {
        event.Clear();
        event.source = d.source;
        event.name = d.name;
        event.time = d.time;
        if (Field* f = event.fields.Append(d.field_count)) {
          std::copy_n(batch->fields.data() + d.field_begin, d.field_count, f);
        }
        lines.Join(event);
        p.dispatcher->Dispatch(event);
      } else if (flags.show_unparsed) {
        fmt::print(stderr, "{}:{}: {}: {}\n", flags.files[d.file], d.line_no, d.reason, d.message);
      }
    }
    progress.Update(batch->input_done, flags.files[batch->file]);
    queue.Recycle(std::move(batch));
  }
  reader_thread.join();
  if (!queue.error().empty()) {
    fmt::print(stderr, "mailscope replay: {}\n", queue.error());
    return 1;
  }
  input.files = readers.size();
  const ingest::LogLineFormat::InFlight in_flight = lines.format().in_flight();
  input.messages_in_queue = in_flight.messages;
  input.sessions_open = in_flight.sessions;
  input.bytes = queue.bytes();
  input.lines = queue.lines();
  progress.Finish(queue.input_done());
  input.seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
  input.lines_figures = lines.figures();

  if (flags.openmetrics) {
    std::fputs(OpenMetricsText(p, format, input.lines_figures).c_str(), stdout);
  } else if (flags.json) {
    std::fputs(p.report.Json(input, flags.top).c_str(), stdout);
  } else {
    std::fputs(p.report.Text(input, flags.top).c_str(), stdout);
  }
  return 0;
}

}  // namespace

void AddReplayCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<ReplayFlags>();
  CLI::App* cmd = app.add_subcommand(
      "replay",
      "Read old logs (s/qmail, Stalwart) through the decoders, the metrics and the pipeline of "
      "`serve`, then print a report: totals, verdicts by Action::Type::Condition, rejections, "
      "top IPs, HELOs and domains, deliveries by destination, delays and a per-hour histogram "
      "(qmailanalog's reports and more). Plain, .gz and .zst files; - reads stdin.");
  cmd->add_option("FILE", flags->files, "Log files, oldest first; - for stdin")->required();
  cmd->add_option("--format", flags->format,
                  "Log format: auto (from the first lines), qmail, or stalwart (its text log)")
      ->check(CLI::IsMember({"auto", "qmail", "stalwart"}));
  cmd->add_option("--time-zone", flags->time_zone,
                  "Zone of local times without one (tai64nlocal, syslog): a zoneinfo name "
                  "(Europe/Berlin), UTC or an offset (+01:00); default: the system's");
  cmd->add_option("--config", flags->config,
                  "A mailscope configuration whose [metrics.NAME] and [events] apply too");
  cmd->add_flag("--json", flags->json, "Print the report as one JSON object");
  cmd->add_flag("--openmetrics", flags->openmetrics,
                "Print the counters and metrics as OpenMetrics text instead of the report");
  cmd->add_flag("--show-unparsed", flags->show_unparsed,
                "Print each line that was not understood, with file:line and reason, on stderr");
  cmd->add_option("--progress", flags->progress,
                  "Progress bar on stderr: auto (when it is a terminal), always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}));
  cmd->add_option("--top", flags->top, "Rows of each top table")->capture_default_str();
  cmd->callback([flags, &exit_code] { exit_code = RunReplay(*flags); });
}

}  // namespace mailscope::cli
