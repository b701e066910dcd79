#include "net/event_transports.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/queued_writer.h"
#include "net/slow_fifo_testing.h"
#include "net/transport_reaper.h"

namespace mailscope::net {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;
using std::chrono::milliseconds;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr milliseconds kDeadline{5000};

// Runs the loop until pred() holds, at most `limit`.
template <typename Pred>
bool RunUntil(asio::io_context& io, Pred pred, milliseconds limit = kDeadline) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(milliseconds(10));
  }
  return true;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mailscope-transport-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Path(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

exporter::ExporterSettings Settings(std::string format, std::string transport, std::string args,
                                    std::string timeout = "") {
  auto s = exporter::ParseExporterSettings(
      {"test_exporter", format, format == "none" ? "" : "time-unix", transport, args, timeout});
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return *s;
}

// What was queued is written (or failed).
bool WaitIdle(EventTransport& t) { return t.writer()->WaitIdleForTesting(kDeadline); }

// Closes `t` and waits for its writer thread to end.
bool CloseAndWait(EventTransport& t) {
  t.Close();
  return t.writer()->WaitEnded(std::chrono::steady_clock::now() + kDeadline);
}

// --- drop, log -------------------------------------------------------------

// A log sink that keeps the messages it is given and, while held, blocks the
// thread that logs until it is released (or the test's deadline passes), as
// a stderr nobody reads would.
class HeldSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  void Hold() {
    std::lock_guard lock(state_mu_);
    held_ = true;
  }
  void Release() {
    {
      std::lock_guard lock(state_mu_);
      held_ = false;
    }
    changed_.notify_all();
  }
  // Waits until `n` messages have reached the sink (the last one may be
  // blocked in it).
  bool WaitEntered(std::size_t n) {
    std::unique_lock lock(state_mu_);
    return changed_.wait_for(lock, kDeadline, [&] { return entered_ >= n; });
  }
  std::vector<std::string> messages() {
    std::lock_guard lock(state_mu_);
    return messages_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::unique_lock lock(state_mu_);
    ++entered_;
    changed_.notify_all();
    changed_.wait_for(lock, kDeadline, [&] { return !held_; });
    messages_.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}

 private:
  std::mutex state_mu_;
  std::condition_variable changed_;
  bool held_ = false;
  std::size_t entered_ = 0;
  std::vector<std::string> messages_;
};

// Routes spdlog's default logger to a HeldSink for the life of the object.
class CapturedLog {
 public:
  CapturedLog()
      : sink_(std::make_shared<HeldSink>()),
        saved_(spdlog::default_logger()),
        logger_(std::make_shared<spdlog::logger>("captured", sink_)) {
    spdlog::set_default_logger(logger_);
  }
  ~CapturedLog() { spdlog::set_default_logger(saved_); }
  HeldSink& sink() { return *sink_; }

 private:
  std::shared_ptr<HeldSink> sink_;
  std::shared_ptr<spdlog::logger> saved_;
  std::shared_ptr<spdlog::logger> logger_;
};

TEST(EventTransportsTest, DropCountsWhatItTakes) {
  asio::io_context io;
  auto drop = MakeEventTransport(io, Settings("json", "drop", ""));
  EXPECT_EQ(drop->kind(), exporter::ExporterTransport::kDrop);
  EXPECT_EQ(drop->writer(), nullptr);
  drop->Send("{}");
  drop->Close();
  drop->Send("{}");
  EXPECT_EQ(drop->counters().sent, 1u);
  EXPECT_EQ(drop->counters().dropped, 1u);
}

TEST(LogTransportTest, LogsEachPayloadAsAnInfoLine) {
  CapturedLog log;
  asio::io_context io;
  auto t = MakeEventTransport(io, Settings("tab-text", "log", ""));
  EXPECT_EQ(t->kind(), exporter::ExporterTransport::kLog);
  EXPECT_EQ(t->name(), "test_exporter");
  t->Send("event:x\tfield:a=1");
  t->Send("");
  t->Send("second\nline");
  ASSERT_TRUE(CloseAndWait(*t));
  EXPECT_EQ(log.sink().messages(),
            (std::vector<std::string>{"event:x\tfield:a=1", "", "second\nline"}));
  EXPECT_EQ(t->counters().sent, 3u);
  EXPECT_EQ(t->queued(), 0u);
}

// The loop hands events over and goes on while the log cannot be written:
// what does not fit in the queue meanwhile is dropped and counted, the rest
// is logged once the log takes it again.
TEST(LogTransportTest, AStalledLogNeverBlocksSendAndAFullQueueDrops) {
  CapturedLog log;
  log.sink().Hold();
  EventTransportOptions options;
  options.max_queue_events = 2;
  asio::io_context io;
  auto t = MakeEventTransport(io, Settings("tab-text", "log", ""), options);
  t->Send("first");
  ASSERT_TRUE(log.sink().WaitEntered(1));  // the writer is stuck logging it
  for (int i = 0; i < 5; ++i) t->Send("more " + std::to_string(i));
  EXPECT_EQ(t->counters().dropped, 3u);
  EXPECT_EQ(t->counters().sent, 0u);
  EXPECT_EQ(t->queued(), 3u);
  log.sink().Release();
  ASSERT_TRUE(CloseAndWait(*t));
  EXPECT_EQ(log.sink().messages(), (std::vector<std::string>{"first", "more 0", "more 1"}));
  EXPECT_EQ(t->counters().sent, 3u);
  EXPECT_EQ(t->counters().dropped, 3u);
  EXPECT_EQ(t->counters().failed, 0u);
}

// --- file --------------------------------------------------------------------

TEST(FileTransportTest, AppendsOneLinePerEvent) {
  TempDir dir;
  const std::string path = dir.Path("events.json");
  { std::ofstream(path) << "kept\n"; }
  asio::io_context io;
  auto t = MakeEventTransport(io, Settings("json", "file", path + " ignored"));
  t->Send(R"({"event":"a"})");
  t->Send("b\tc");
  t->Send("");
  ASSERT_TRUE(WaitIdle(*t));
  EXPECT_EQ(ReadFile(path), "kept\n{\"event\":\"a\"}\nb\tc\n\n");
  EXPECT_EQ(t->counters().sent, 3u);
  EXPECT_EQ(t->counters().failed, 0u);
  EXPECT_EQ(t->queued(), 0u);
}

TEST(FileTransportTest, CreatesTheFileWithMode0600) {
  TempDir dir;
  const std::string path = dir.Path("new.log");
  asio::io_context io;
  auto t = MakeEventTransport(io, Settings("tab-text", "file", path));
  t->Send("x");
  ASSERT_TRUE(WaitIdle(*t));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(FileTransportTest, ReopenFollowsLogRotation) {
  TempDir dir;
  const std::string path = dir.Path("events.log");
  asio::io_context io;
  auto t = MakeEventTransport(io, Settings("json", "file", path));
  t->Send("first");
  ASSERT_TRUE(WaitIdle(*t));
  std::filesystem::rename(path, path + ".1");
  t->Send("second");  // still the open file, now events.log.1
  ASSERT_TRUE(WaitIdle(*t));
  t->Reopen();
  t->Send("third");
  ASSERT_TRUE(WaitIdle(*t));
  EXPECT_EQ(ReadFile(path + ".1"), "first\nsecond\n");
  EXPECT_EQ(ReadFile(path), "third\n");
  EXPECT_EQ(t->counters().sent, 3u);
}

TEST(FileTransportTest, CountsWriteErrors) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  asio::io_context io;
  auto t = MakeEventTransport(io, Settings("json", "file", "/dev/full"));
  t->Send("a");
  ASSERT_TRUE(WaitIdle(*t));
  t->Send("b");
  ASSERT_TRUE(WaitIdle(*t));
  EXPECT_EQ(t->counters().failed, 2u);
  EXPECT_EQ(t->counters().sent, 0u);
}

TEST(FileTransportTest, CountsOpenErrorsAndRecovers) {
  TempDir dir;
  const std::string path = dir.Path("later/events.log");
  asio::io_context io;
  auto t = MakeEventTransport(io, Settings("json", "file", path));
  t->Send("lost");
  ASSERT_TRUE(WaitIdle(*t));
  EXPECT_EQ(t->counters().failed, 1u);
  std::filesystem::create_directory(dir.Path("later"));
  t->Send("kept");
  ASSERT_TRUE(WaitIdle(*t));
  EXPECT_EQ(ReadFile(path), "kept\n");
  EXPECT_EQ(t->counters().sent, 1u);
}

TEST(FileTransportTest, DropsWhatDoesNotFitAndAfterClose) {
  TempDir dir;
  EventTransportOptions options;
  options.max_queue_bytes = 16;
  asio::io_context io;
  auto t = MakeEventTransport(io, Settings("json", "file", dir.Path("f")), options);
  t->Send(std::string(16, 'x'));  // 17 bytes with its LF
  EXPECT_EQ(t->counters().dropped, 1u);
  t->Close();
  t->Send("late");
  EXPECT_EQ(t->counters().dropped, 2u);
  EXPECT_EQ(t->counters().sent, 0u);
}

TEST(FileTransportTest, CloseWritesWhatIsQueued) {
  TempDir dir;
  const std::string path = dir.Path("f");
  asio::io_context io;
  auto t = MakeEventTransport(io, Settings("json", "file", path));
  for (int i = 0; i < 1000; ++i) t->Send("line " + std::to_string(i));
  ASSERT_TRUE(CloseAndWait(*t));
  const std::string text = ReadFile(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1000);
  EXPECT_TRUE(text.ends_with("line 999\n"));
  EXPECT_EQ(t->counters().sent, 1000u);
  EXPECT_EQ(t->queued(), 0u);
}

std::string NumberedLines(int from, int to) {
  std::string text;
  for (int i = from; i < to; ++i)
    text += "event " + std::to_string(i) + std::string(90, '.') + "\n";
  return text;
}

// Equal, or where they first differ (the texts are long).
::testing::AssertionResult SameText(const std::string& got, const std::string& want) {
  if (got == want) return ::testing::AssertionSuccess();
  const auto diff = std::mismatch(got.begin(), got.end(), want.begin(), want.end());
  const auto at = static_cast<std::size_t>(diff.first - got.begin());
  return ::testing::AssertionFailure()
         << "got " << got.size() << " bytes, want " << want.size() << "; they differ from byte "
         << at << ": \"" << got.substr(at, 40) << "\" vs \"" << want.substr(at, 40) << "\"";
}

void SendNumbered(EventTransport& t, int from, int to) {
  for (int i = from; i < to; ++i) t.Send("event " + std::to_string(i) + std::string(90, '.'));
}

// A file transport writing to a FIFO whose reader has stalled: kEvents
// events sent (five times the pipe buffer), and the pipe full.
class StalledFifoTest : public ::testing::Test {
 protected:
  static constexpr int kEvents = 200;

  void SetUp() override {
    ASSERT_TRUE(fifo_.ok()) << std::strerror(errno);
    SendNumbered(*transport_, 0, kEvents);
    ASSERT_TRUE(fifo_.WaitFull());
  }

  // The reader catches up: every line arrives, whole and in order.
  ::testing::AssertionResult ReaderGetsEveryLine() {
    return SameText(fifo_.ReadLines(kEvents), NumberedLines(0, kEvents));
  }

  TempDir dir_;
  const std::string path_ = dir_.Path("fifo");
  SlowFifoForTesting fifo_{path_, kDeadline};
  asio::io_context io_;
  std::unique_ptr<EventTransport> transport_ =
      MakeEventTransport(io_, Settings("json", "file", path_));
};

// A reader that is slow is waited for: nothing is lost, nothing is cut.
TEST_F(StalledFifoTest, TheWriterWaitsForTheReader) {
  EXPECT_TRUE(ReaderGetsEveryLine());
  ASSERT_TRUE(WaitIdle(*transport_));
  EXPECT_EQ(transport_->counters().sent, kEvents);
  EXPECT_EQ(transport_->counters().failed, 0u);
}

// Close() returns while the writer waits for the reader; what was queued
// still arrives once the reader reads.
TEST_F(StalledFifoTest, CloseReturnsAtOnceAndTheQueueStillArrives) {
  auto closed = std::async(std::launch::async, [&] { transport_->Close(); });
  const bool returned = closed.wait_for(kDeadline) == std::future_status::ready;
  EXPECT_TRUE(returned) << "Close() waited for the writer";
  transport_->Send("too late");
  EXPECT_TRUE(ReaderGetsEveryLine());
  ASSERT_TRUE(transport_->writer()->WaitEnded(std::chrono::steady_clock::now() + kDeadline));
  EXPECT_EQ(transport_->counters().sent, kEvents);
  EXPECT_EQ(transport_->counters().dropped, 1u);
  EXPECT_EQ(transport_->counters().failed, 0u);
}

// --- reaper ------------------------------------------------------------------

// Retire() never waits: the transport finishes on the reaper's thread and
// goes once its queue is written.
TEST_F(StalledFifoTest, RetireReturnsAtOnceAndTheQueueIsWrittenLater) {
  TransportReaper reaper;
  auto retired = std::async(std::launch::async, [&] { reaper.Retire(std::move(transport_)); });
  const bool returned = retired.wait_for(kDeadline) == std::future_status::ready;
  EXPECT_TRUE(returned) << "Retire() waited for the writer";
  EXPECT_EQ(reaper.size(), 1u);
  EXPECT_TRUE(ReaderGetsEveryLine());
  reaper.Finish(std::chrono::steady_clock::now() + kDeadline);
  EXPECT_EQ(reaper.size(), 0u);
}

// At the deadline, what a reader never took is dropped: Finish() is bounded.
TEST_F(StalledFifoTest, ReaperFinishAbortsWritersPastTheDeadline) {
  TransportReaper reaper;
  reaper.Retire(std::move(transport_));
  auto finished =
      std::async(std::launch::async, [&] { reaper.Finish(std::chrono::steady_clock::now()); });
  if (finished.wait_for(kDeadline) != std::future_status::ready) {
    // The thread in Finish() cannot be joined: report, and end the binary.
    std::fprintf(stderr, "TransportReaper::Finish() went past its deadline\n");
    std::abort();
  }
  EXPECT_EQ(reaper.size(), 0u);
}

TEST(TransportReaperTest, NetworkTransportsAreDestroyedAtOnce) {
  asio::io_context io;
  TransportReaper reaper;
  auto t = MakeEventTransport(io, Settings("json", "unix", "/nonexistent/socket"));
  t->Send("x");
  reaper.Retire(std::move(t));
  EXPECT_EQ(reaper.size(), 0u);
}

// --- unix ----------------------------------------------------------------------

// A UNIX stream server that collects the lines of each connection.
class LineSink {
 public:
  LineSink(asio::io_context& io, const std::string& path) : io_(io), acceptor_(io) {
    asio::local::stream_protocol::endpoint ep(path);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
    asio::co_spawn(io, Accept(), asio::detached);
  }
  ~LineSink() { Stop(); }

  void Stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& c : conns_) c->close(ignored);
  }
  // Closes the connections accepted so far.
  void Hangup() {
    boost::system::error_code ignored;
    for (auto& c : conns_) c->close(ignored);
  }

  std::vector<std::vector<std::string>> lines;  // per connection

 private:
  asio::awaitable<void> Accept() {
    for (;;) {
      auto sock = std::make_shared<asio::local::stream_protocol::socket>(io_);
      auto [ec] = co_await acceptor_.async_accept(*sock, kTuple);
      if (ec) co_return;
      conns_.push_back(sock);
      lines.emplace_back();
      asio::co_spawn(io_, Read(sock, lines.size() - 1), asio::detached);
    }
  }
  asio::awaitable<void> Read(std::shared_ptr<asio::local::stream_protocol::socket> sock,
                             std::size_t conn) {
    std::string buf;
    for (;;) {
      auto [ec, n] =
          co_await asio::async_read_until(*sock, asio::dynamic_buffer(buf), '\n', kTuple);
      if (ec) co_return;
      lines[conn].push_back(buf.substr(0, n - 1));
      buf.erase(0, n);
    }
  }

  asio::io_context& io_;
  asio::local::stream_protocol::acceptor acceptor_;
  std::vector<std::shared_ptr<asio::local::stream_protocol::socket>> conns_;
};

TEST(UnixTransportTest, ConnectsOnFirstSendAndWritesLines) {
  TempDir dir;
  const std::string path = dir.Path("events.sock");
  asio::io_context io;
  LineSink sink(io, path);
  auto t = MakeEventTransport(io, Settings("tab-text", "unix", path, "1s"));
  RunUntil(
      io, [] { return false; }, milliseconds(20));
  EXPECT_TRUE(sink.lines.empty());  // lazy
  t->Send("event:a");
  t->Send("event:b\tfield:x=1");
  ASSERT_TRUE(RunUntil(io, [&] { return t->counters().sent == 2; }));
  t->Send("event:c");
  ASSERT_TRUE(RunUntil(io, [&] { return sink.lines.size() == 1 && sink.lines[0].size() == 3; }));
  EXPECT_EQ(sink.lines[0], (std::vector<std::string>{"event:a", "event:b\tfield:x=1", "event:c"}));
  EXPECT_EQ(t->counters().dropped, 0u);
  EXPECT_EQ(t->queued(), 0u);
}

TEST(UnixTransportTest, ReconnectsAfterThePeerHangsUp) {
  TempDir dir;
  const std::string path = dir.Path("events.sock");
  asio::io_context io;
  LineSink sink(io, path);
  EventTransportOptions options;
  options.reconnect_min = milliseconds(1);
  auto t = MakeEventTransport(io, Settings("json", "unix", path), options);
  t->Send("one");
  ASSERT_TRUE(RunUntil(io, [&] { return !sink.lines.empty() && sink.lines[0].size() == 1; }));
  sink.Hangup();
  // Keep sending: what goes while the transport notices and waits is lost
  // (dropped or failed); then a new connection carries the lines.
  int sends = 1;
  ASSERT_TRUE(RunUntil(io, [&] {
    t->Send("after " + std::to_string(sends++));
    return sink.lines.size() == 2 && !sink.lines[1].empty();
  }));
  ASSERT_TRUE(RunUntil(io, [&] { return t->queued() == 0; }));
  const TransportCounters c = t->counters();
  EXPECT_EQ(c.sent + c.dropped + c.failed, static_cast<std::uint64_t>(sends - 1 + 1));
  EXPECT_GE(c.dropped + c.failed, 1u);
  EXPECT_EQ(sink.lines[1].front().rfind("after ", 0), 0u);
}

TEST(UnixTransportTest, DropsWhileThePeerIsUnreachable) {
  TempDir dir;
  asio::io_context io;
  EventTransportOptions options;
  options.reconnect_min = milliseconds(60'000);
  auto t = MakeEventTransport(io, Settings("json", "unix", dir.Path("nobody.sock")), options);
  t->Send("a");  // queued; the connect fails
  ASSERT_TRUE(RunUntil(io, [&] { return t->counters().dropped == 1; }));
  t->Send("b");  // waiting to reconnect
  EXPECT_EQ(t->counters().dropped, 2u);
  EXPECT_EQ(t->counters().sent, 0u);
}

TEST(UnixTransportTest, BoundsItsQueue) {
  TempDir dir;
  const std::string path = dir.Path("events.sock");
  asio::io_context io;
  LineSink sink(io, path);
  EventTransportOptions options;
  options.max_queue_events = 2;
  auto t = MakeEventTransport(io, Settings("json", "unix", path), options);
  t->Send("1");
  t->Send("2");
  t->Send("3");  // the loop has not run: still connecting, queue full
  EXPECT_EQ(t->counters().dropped, 1u);
  ASSERT_TRUE(RunUntil(io, [&] { return t->counters().sent == 2; }));
  t->Close();
  t->Send("4");
  EXPECT_EQ(t->counters().dropped, 2u);
}

// --- http-post -------------------------------------------------------------------

// An HTTP server that records each request and answers as told.
class HttpSink {
 public:
  struct Request {
    std::size_t connection;
    std::string method, target, host, content_type, connection_header, body;
  };
  unsigned status = 200;
  bool keep_alive = true;
  bool close_after_answer = false;  // closes although it said keep-alive
  int hang = 0;                     // requests left unanswered

  explicit HttpSink(asio::io_context& io) : io_(io), acceptor_(io) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
    asio::co_spawn(io, Accept(), asio::detached);
  }
  ~HttpSink() { Stop(); }
  void Stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& c : conns_) c->close(ignored);
  }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) +
           std::string(path);
  }
  std::string host() const {
    return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }

  std::vector<Request> requests;
  std::size_t connections = 0;
  std::size_t closed = 0;  // connections the server closed

 private:
  asio::awaitable<void> Accept() {
    for (;;) {
      auto sock = std::make_shared<tcp::socket>(io_);
      auto [ec] = co_await acceptor_.async_accept(*sock, kTuple);
      if (ec) co_return;
      conns_.push_back(sock);
      asio::co_spawn(io_, Serve(sock, connections++), asio::detached);
    }
  }
  asio::awaitable<void> Serve(std::shared_ptr<tcp::socket> sock, std::size_t conn) {
    boost::beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      auto [ec, n] = co_await http::async_read(*sock, buffer, req, kTuple);
      if (ec) co_return;
      requests.push_back({conn, std::string(req.method_string()), std::string(req.target()),
                          std::string(req[http::field::host]),
                          std::string(req[http::field::content_type]),
                          std::string(req[http::field::connection]), req.body()});
      if (hang > 0) {
        --hang;
        continue;  // never answers this one
      }
      http::response<http::string_body> res(static_cast<http::status>(status), 11);
      res.keep_alive(keep_alive);
      res.body() = "ok";
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(*sock, res, kTuple);
      if (wec || !keep_alive || close_after_answer) {
        boost::system::error_code ignored;
        sock->shutdown(tcp::socket::shutdown_both, ignored);
        sock->close(ignored);
        ++closed;
        co_return;
      }
    }
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::vector<std::shared_ptr<tcp::socket>> conns_;
};

TEST(HttpPostTransportTest, PostsEachEventOverOneKeptAliveConnection) {
  asio::io_context io;
  HttpSink sink(io);
  auto t = MakeEventTransport(io, Settings("json", "http-post", sink.url("/json"), "2 secs"));
  t->Send(R"({"event":"a"})");
  t->Send(R"({"event":"b"})");
  ASSERT_TRUE(RunUntil(io, [&] { return t->counters().sent == 2; }));
  t->Send(R"({"event":"c"})");
  ASSERT_TRUE(RunUntil(io, [&] { return t->counters().sent == 3; }));
  ASSERT_EQ(sink.requests.size(), 3u);
  EXPECT_EQ(sink.connections, 1u);
  for (const auto& r : sink.requests) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/json");
    EXPECT_EQ(r.host, sink.host());
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_EQ(r.connection_header, "Keep-Alive");
  }
  EXPECT_EQ(sink.requests[0].body, R"({"event":"a"})");
  EXPECT_EQ(sink.requests[2].body, R"({"event":"c"})");
  EXPECT_EQ(t->counters().failed, 0u);
  EXPECT_EQ(t->queued(), 0u);
}

TEST(HttpPostTransportTest, ContentTypeFollowsTheFormat) {
  asio::io_context io;
  HttpSink sink(io);
  auto tab = MakeEventTransport(io, Settings("tab-text", "http-post", sink.url("/tabtext")));
  auto none = MakeEventTransport(io, Settings("none", "http-post", sink.url("/none")));
  tab->Send("event:x\thostname:vm");
  none->Send("");
  ASSERT_TRUE(RunUntil(io, [&] { return sink.requests.size() == 2; }));
  for (const auto& r : sink.requests) {
    if (r.target == "/tabtext") {
      EXPECT_EQ(r.content_type, "text/plain");
      EXPECT_EQ(r.body, "event:x\thostname:vm");
    } else {
      EXPECT_EQ(r.target, "/none");
      EXPECT_EQ(r.content_type, "application/octet-stream");
      EXPECT_EQ(r.body, "");
    }
  }
}

TEST(HttpPostTransportTest, ReconnectsWhenTheServerCloses) {
  asio::io_context io;
  HttpSink sink(io);
  sink.keep_alive = false;
  auto t = MakeEventTransport(io, Settings("json", "http-post", sink.url("/")));
  for (int i = 0; i < 3; ++i) t->Send("{}");
  ASSERT_TRUE(RunUntil(io, [&] { return t->counters().sent == 3; }));
  EXPECT_EQ(sink.connections, 3u);
}

// The server closes a connection it called keep-alive: the next request fails
// before any answer and is tried once more on a new connection.
TEST(HttpPostTransportTest, RetriesOnceOnAStaleConnection) {
  asio::io_context io;
  HttpSink sink(io);
  sink.close_after_answer = true;
  auto t = MakeEventTransport(io, Settings("json", "http-post", sink.url("/")));
  t->Send("1");
  ASSERT_TRUE(RunUntil(io, [&] { return t->counters().sent == 1 && sink.closed == 1; }));
  t->Send("2");
  ASSERT_TRUE(RunUntil(io, [&] { return t->counters().sent + t->counters().failed == 2; }));
  EXPECT_EQ(t->counters().sent, 2u);
  EXPECT_EQ(sink.connections, 2u);
  EXPECT_EQ(sink.requests.back().body, "2");
}

TEST(HttpPostTransportTest, CountsErrorAnswersAsFailures) {
  asio::io_context io;
  HttpSink sink(io);
  sink.status = 500;
  auto t = MakeEventTransport(io, Settings("json", "http-post", sink.url("/")));
  t->Send("{}");
  t->Send("{}");
  ASSERT_TRUE(RunUntil(io, [&] { return t->counters().failed == 2; }));
  EXPECT_EQ(t->counters().sent, 0u);
  EXPECT_EQ(sink.requests.size(), 2u);
}

TEST(HttpPostTransportTest, AppliesTheTransportTimeout) {
  asio::io_context io;
  HttpSink sink(io);
  sink.hang = 1;
  auto t = MakeEventTransport(io, Settings("json", "http-post", sink.url("/"), "100ms"));
  const auto start = std::chrono::steady_clock::now();
  t->Send("slow");
  t->Send("fast");
  ASSERT_TRUE(RunUntil(io, [&] { return t->counters().failed == 1; }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(100));
  ASSERT_TRUE(RunUntil(io, [&] { return t->counters().sent == 1; }));
  EXPECT_EQ(sink.connections, 2u);  // the timed-out connection was closed
}

TEST(HttpPostTransportTest, CountsConnectionFailures) {
  asio::io_context io;
  unsigned short port = 0;
  {
    tcp::acceptor gone(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = gone.local_endpoint().port();
  }  // closed: nothing listens there now
  auto t = MakeEventTransport(
      io, Settings("json", "http-post", "http://127.0.0.1:" + std::to_string(port) + "/"));
  t->Send("{}");
  ASSERT_TRUE(RunUntil(io, [&] { return t->counters().failed == 1; }));
}

TEST(HttpPostTransportTest, BoundsItsQueueAndDropsItOnClose) {
  asio::io_context io;
  HttpSink sink(io);
  EventTransportOptions options;
  options.max_queue_events = 2;
  auto t = MakeEventTransport(io, Settings("json", "http-post", sink.url("/")), options);
  t->Send("1");
  t->Send("2");
  t->Send("3");  // the loop has not run yet
  EXPECT_EQ(t->counters().dropped, 1u);
  EXPECT_EQ(t->queued(), 2u);
  t->Close();
  EXPECT_EQ(t->counters().dropped, 3u);
  t->Send("4");
  EXPECT_EQ(t->counters().dropped, 4u);
  RunUntil(
      io, [] { return false; }, milliseconds(20));
  EXPECT_TRUE(sink.requests.empty());
  EXPECT_EQ(t->counters().sent, 0u);
}

}  // namespace
}  // namespace mailscope::net
