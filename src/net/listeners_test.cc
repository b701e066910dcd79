// Fault containment of the listeners: a handler that throws loses its own
// line and nothing else. Each test drives the loop on the test thread until
// a condition holds or a deadline passes.
#include "net/listeners.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "net/accept_backoff.h"
#include "net/spawn.h"

namespace mailscope::net {
namespace {

using namespace std::chrono_literals;

// Runs the loop until `done` holds, at most 5 s. Returns done().
bool RunUntil(boost::asio::io_context& io, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(5ms);
  }
  return done();
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ms-listeners-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// A non-blocking client of a UNIX stream socket; the loop runs in between.
class Client {
 public:
  explicit Client(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_STREAM, 0)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::fcntl(fd_, F_SETFL, O_NONBLOCK);
  }
  ~Client() { Close(); }
  bool connected() const { return connected_; }
  void Send(std::string_view text) {
    ASSERT_EQ(::send(fd_, text.data(), text.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(text.size()));
  }
  // Takes what arrived; notes end of stream.
  void Poll() {
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        received_.append(buf, static_cast<std::size_t>(n));
      } else {
        if (n == 0) eof_ = true;
        return;
      }
    }
  }
  // Half-closes: the server reads EOF, the client can still read.
  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }
  const std::string& received() const { return received_; }
  bool eof() const { return eof_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
  bool connected_ = false;
  bool eof_ = false;
  std::string received_;
};

TEST(FifoReaderTest, ThrowingLineHandlerDropsOnlyItsLine) {
  TempDir dir;
  boost::asio::io_context io;
  std::vector<std::string> lines;
  auto reader = FifoReader::Open(
      io, dir.File("fifo"), PathPerms{}, 1024, [] {},
      [&](std::span<char> line) {
        std::string text(line.data(), line.size());
        if (text.starts_with("boom")) throw std::runtime_error("injected");
        lines.push_back(text);
      },
      [](std::size_t) {});
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  int w = ::open(dir.File("fifo").c_str(), O_WRONLY | O_NONBLOCK);
  ASSERT_GE(w, 0);
  std::string first = "a\nboom 1\nb\n";
  ASSERT_EQ(::write(w, first.data(), first.size()), static_cast<ssize_t>(first.size()));
  EXPECT_TRUE(RunUntil(io, [&] { return lines.size() == 2; }));
  // A later read still reaches the handler: the read loop did not end.
  std::string second = "boom 2\nc\n";
  ASSERT_EQ(::write(w, second.data(), second.size()), static_cast<ssize_t>(second.size()));
  EXPECT_TRUE(RunUntil(io, [&] { return lines.size() == 3; }));
  EXPECT_EQ(lines, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ((*reader)->handler_faults(), 2u);
  ::close(w);
}

TEST(FifoReaderTest, HandlerThatThrowsOnEveryLineDoesNotStopTheReader) {
  TempDir dir;
  boost::asio::io_context io;
  bool failing = true;
  std::vector<std::string> lines;
  auto reader = FifoReader::Open(
      io, dir.File("fifo"), PathPerms{}, 1024,
      [&] {
        if (failing) throw std::bad_alloc();
      },
      [&](std::span<char> line) {
        if (failing) throw std::logic_error("injected");
        lines.emplace_back(line.data(), line.size());
      },
      [](std::size_t) {});
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  int w = ::open(dir.File("fifo").c_str(), O_WRONLY | O_NONBLOCK);
  ASSERT_GE(w, 0);
  std::string burst;
  for (int i = 0; i < 100; ++i) burst += "x\n";
  ASSERT_EQ(::write(w, burst.data(), burst.size()), static_cast<ssize_t>(burst.size()));
  EXPECT_TRUE(RunUntil(io, [&] { return (*reader)->handler_faults() >= 101; }));
  failing = false;
  ASSERT_EQ(::write(w, "ok\n", 3), 3);
  EXPECT_TRUE(RunUntil(io, [&] { return !lines.empty(); }));
  EXPECT_EQ(lines, (std::vector<std::string>{"ok"}));
  ::close(w);
}

// A FifoReader that collects its lines, and a non-blocking writer of its FIFO.
class CollectingFifoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto reader = FifoReader::Open(
        io_, dir_.File("fifo"), PathPerms{}, 1024, [] {},
        [this](std::span<char> line) { lines_.emplace_back(line.data(), line.size()); },
        [](std::size_t) {});
    ASSERT_TRUE(reader.ok()) << reader.status().message();
    reader_ = std::move(*reader);
    writer_ = ::open(dir_.File("fifo").c_str(), O_WRONLY | O_NONBLOCK);
    ASSERT_GE(writer_, 0);
  }
  void TearDown() override {
    if (writer_ >= 0) ::close(writer_);
  }
  // One write(), then whatever the loop has ready to run.
  void WriteAndPoll(std::string_view text) {
    ASSERT_EQ(::write(writer_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    io_.restart();
    io_.poll();
  }

  TempDir dir_;
  boost::asio::io_context io_;
  std::vector<std::string> lines_;
  std::unique_ptr<FifoReader> reader_;
  int writer_ = -1;
};

// Records written one per write() and read as fast as they come make the
// reader wait between small reads (out of the epoll set): nothing is lost or
// reordered, and the pipe is the 1 MiB one asked for.
TEST_F(CollectingFifoTest, SmallWritesInQuickSuccessionAllArriveInOrder) {
  EXPECT_EQ(::fcntl(writer_, F_GETPIPE_SZ), 1024 * 1024);
  constexpr int kRecords = 5000;
  for (int i = 0; i < kRecords; ++i) WriteAndPoll("record " + std::to_string(i) + "\n");
  EXPECT_TRUE(RunUntil(io_, [&] { return lines_.size() == kRecords; }));
  ASSERT_EQ(lines_.size(), static_cast<std::size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) ASSERT_EQ(lines_[i], "record " + std::to_string(i));
}

// Close() during such a wait still takes what the writers left in the pipe.
TEST_F(CollectingFifoTest, CloseBetweenSmallReadsTakesWhatThePipeHolds) {
  for (int i = 0; i < 3; ++i) WriteAndPoll("a\n");
  ASSERT_EQ(::write(writer_, "last\n", 5), 5);
  reader_->Close();
  ASSERT_FALSE(lines_.empty());
  EXPECT_EQ(lines_.back(), "last");
  EXPECT_EQ(lines_.size(), 4u);
  io_.restart();
  io_.poll();  // the waiting read ends without touching the closed FIFO
  EXPECT_EQ(lines_.size(), 4u);
}

struct Recorder {
  int opened = 0;
  int closed = 0;
};

// Echoes each line as "echo LINE"; throws on lines starting with "boom".
ConnectionFactory EchoFactory(Recorder& rec, bool keep_reading) {
  return [&rec, keep_reading] {
    LineConnection c;
    c.on_line = [](std::span<char> line, std::string& reply) {
      std::string text(line.data(), line.size());
      reply += "partial ";
      if (text.starts_with("boom")) throw std::runtime_error("injected");
      reply.resize(reply.size() - 8);
      reply += "echo " + text + "\n";
      return true;
    };
    c.on_open = [&rec](Pusher) { ++rec.opened; };
    c.on_close = [&rec] { ++rec.closed; };
    c.keep_reading_after_fault = keep_reading;
    return c;
  };
}

TEST(LineServerTest, FaultClosesARequestConnectionRunsOnCloseOnceAndServingGoesOn) {
  TempDir dir;
  boost::asio::io_context io;
  Recorder rec;
  auto server =
      LineServer::ListenUnix(io, dir.File("sock"), PathPerms{}, 1024, EchoFactory(rec, false));
  ASSERT_TRUE(server.ok()) << server.status().message();
  {
    Client c(dir.File("sock"));
    ASSERT_TRUE(c.connected());
    c.Send("a\nboom\nb\n");
    EXPECT_TRUE(RunUntil(io, [&] {
      c.Poll();
      return c.eof() && rec.closed == 1;
    }));
    // The reply before the fault went out; nothing of the failed line nor after it.
    EXPECT_EQ(c.received(), "echo a\n");
  }
  EXPECT_EQ((*server)->figures().handler_faults, 1u);
  EXPECT_TRUE(RunUntil(io, [&] { return (*server)->connection_count() == 0; }));
  Client next(dir.File("sock"));
  ASSERT_TRUE(next.connected());
  next.Send("c\n");
  EXPECT_TRUE(RunUntil(io, [&] {
    next.Poll();
    return next.received() == "echo c\n";
  }));
  next.Close();
  EXPECT_TRUE(RunUntil(io, [&] { return rec.closed == 2; }));
  EXPECT_EQ(rec.opened, 2);
}

// The highest descriptor this process has open.
int HighestOpenFd() {
  int highest = 2;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
    highest = std::max(highest, std::atoi(entry.path().filename().c_str()));
  return highest;
}

TEST(LineServerTest, AcceptWithoutDescriptorsPausesInsteadOfSpinning) {
  TempDir dir;
  boost::asio::io_context io;
  Recorder rec;
  auto server =
      LineServer::ListenUnix(io, dir.File("sock"), PathPerms{}, 1024, EchoFactory(rec, false));
  ASSERT_TRUE(server.ok()) << server.status().message();
  // The loop's timer machinery opens its descriptors on first use: use it
  // now, while there are descriptors to open.
  boost::asio::steady_timer warm(io, 1ms);
  bool warmed = false;
  warm.async_wait([&](boost::system::error_code) { warmed = true; });
  ASSERT_TRUE(RunUntil(io, [&] { return warmed; }));
  // UBSan's first check of a dynamic type reads files: log as the pause will, first.
  AcceptBackoff().Failed("warm-up", "no error");
  Client a(dir.File("sock")), b(dir.File("sock"));
  ASSERT_TRUE(a.connected() && b.connected());  // waiting in the backlog
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(HighestOpenFd() + 1);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  std::vector<int> fillers;  // the free numbers below the limit: no descriptor left
  for (int fd; (fd = ::open("/dev/null", O_RDONLY)) >= 0;) fillers.push_back(fd);
  // Long enough for a few pauses (10, 20, 40, 80 ms, ...); a loop retrying at
  // once would fail tens of thousands of times meanwhile.
  const auto until = std::chrono::steady_clock::now() + 300ms;
  while (std::chrono::steady_clock::now() < until) {
    io.restart();
    io.run_for(5ms);
  }
  const std::uint64_t failures = (*server)->figures().accept_failures;
  for (int fd : fillers) ::close(fd);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_GE(failures, 2u);
  EXPECT_LE(failures, 20u);
  EXPECT_EQ(rec.opened, 0);
  // Descriptors back: both waiting clients are served.
  EXPECT_TRUE(RunUntil(io, [&] { return rec.opened == 2; }));
  a.Send("x\n");
  EXPECT_TRUE(RunUntil(io, [&] {
    a.Poll();
    return a.received() == "echo x\n";
  }));
}

TEST(LineServerTest, StreamConnectionKeepsReadingAfterAFault) {
  TempDir dir;
  boost::asio::io_context io;
  Recorder rec;
  auto server =
      LineServer::ListenUnix(io, dir.File("sock"), PathPerms{}, 1024, EchoFactory(rec, true));
  ASSERT_TRUE(server.ok()) << server.status().message();
  Client c(dir.File("sock"));
  ASSERT_TRUE(c.connected());
  c.Send("a\nboom\nb\n");
  EXPECT_TRUE(RunUntil(io, [&] {
    c.Poll();
    return c.received() == "echo a\necho b\n";
  }));
  c.Send("boom again\nc\n");
  EXPECT_TRUE(RunUntil(io, [&] {
    c.Poll();
    return c.received() == "echo a\necho b\necho c\n";
  }));
  EXPECT_FALSE(c.eof());
  EXPECT_EQ(rec.closed, 0);
  EXPECT_EQ((*server)->figures().handler_faults, 2u);
  c.Close();
  EXPECT_TRUE(RunUntil(io, [&] { return rec.closed == 1; }));
}

TEST(LineServerTest, ThrowFromOnOpenStillRunsOnCloseOnce) {
  TempDir dir;
  boost::asio::io_context io;
  int opens = 0;
  int closes = 0;
  auto server = LineServer::ListenUnix(io, dir.File("sock"), PathPerms{}, 1024, [&]() {
    LineConnection c;
    c.on_line = [](std::span<char>, std::string& reply) {
      reply += "hi\n";
      return true;
    };
    c.on_open = [&](Pusher) {
      if (++opens == 1) throw std::runtime_error("injected");
    };
    c.on_close = [&] { ++closes; };
    return c;
  });
  ASSERT_TRUE(server.ok()) << server.status().message();
  Client first(dir.File("sock"));
  ASSERT_TRUE(first.connected());
  EXPECT_TRUE(RunUntil(io, [&] {
    first.Poll();
    return first.eof() && closes == 1;
  }));
  Client second(dir.File("sock"));
  ASSERT_TRUE(second.connected());
  second.Send("x\n");
  EXPECT_TRUE(RunUntil(io, [&] {
    second.Poll();
    return second.received() == "hi\n";
  }));
  EXPECT_EQ(closes, 1);
}

TEST(LineServerTest, SocketPathTooLongIsAnErrorNotAThrow) {
  boost::asio::io_context io;
  Recorder rec;
  const std::string path = "/tmp/" + std::string(103, 'x');  // 108 bytes: one too many
  auto server = LineServer::ListenUnix(io, path, PathPerms{}, 64, EchoFactory(rec, false));
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("at most 107 bytes, this is 108"), std::string::npos)
      << server.status().message();
}

// A request ended by the peer's half-close instead of an LF, as Exim's
// readsocket sends it: handled as a line when the connection asks for that,
// dropped otherwise.
TEST(LineServerTest, LineAtEofIsHandledWhenTheConnectionAsksForIt) {
  for (bool line_at_eof : {true, false}) {
    TempDir dir;
    boost::asio::io_context io;
    std::vector<std::string> lines;
    auto server = LineServer::ListenUnix(io, dir.File("sock"), PathPerms{}, 64, [&] {
      LineConnection c;
      c.on_line = [&](std::span<char> line, std::string& reply) {
        lines.emplace_back(line.data(), line.size());
        reply += "ok " + lines.back();
        return false;
      };
      c.line_at_eof = line_at_eof;
      return c;
    });
    ASSERT_TRUE(server.ok()) << server.status().message();
    Client c(dir.File("sock"));
    ASSERT_TRUE(c.connected());
    c.Send("no newline");
    io.run_for(50ms);
    EXPECT_TRUE(lines.empty());  // no line before the LF or the EOF
    c.Send(" here");
    c.ShutdownWrite();
    EXPECT_TRUE(RunUntil(io, [&] {
      c.Poll();
      return c.eof();
    }));
    if (line_at_eof) {
      EXPECT_EQ(lines, std::vector<std::string>{"no newline here"});
      EXPECT_EQ(c.received(), "ok no newline here");
    } else {
      EXPECT_TRUE(lines.empty());
      EXPECT_EQ(c.received(), "");
    }
  }
}

// --- Limits: what a hostile or broken client can make a LineServer hold.

// Replies `reply_bytes` bytes to every line and counts the lines handled.
ConnectionFactory ReplyFactory(int& handled, std::size_t reply_bytes) {
  return [&handled, reply_bytes] {
    LineConnection c;
    c.on_line = [&handled, reply_bytes](std::span<char>, std::string& reply) {
      ++handled;
      reply.append(reply_bytes - 1, 'r');
      reply += '\n';
      return true;
    };
    return c;
  };
}

TEST(LineServerLimitsTest, ClientLimitRefusesAndCountsTheConnectionOverIt) {
  TempDir dir;
  boost::asio::io_context io;
  Recorder rec;
  LineServerLimits limits;
  limits.client_limit = 2;
  auto server = LineServer::ListenUnix(io, dir.File("sock"), PathPerms{}, 1024,
                                       EchoFactory(rec, false), limits);
  ASSERT_TRUE(server.ok()) << server.status().message();
  Client a(dir.File("sock")), b(dir.File("sock"));
  ASSERT_TRUE(RunUntil(io, [&] { return (*server)->connection_count() == 2; }));
  Client c(dir.File("sock"));
  EXPECT_TRUE(RunUntil(io, [&] {
    c.Poll();
    return c.eof();
  }));
  EXPECT_EQ((*server)->figures().refused, 1u);
  a.Send("still served\n");
  EXPECT_TRUE(RunUntil(io, [&] {
    a.Poll();
    return a.received() == "echo still served\n";
  }));
  // A place freed is a place taken.
  b.Close();
  ASSERT_TRUE(RunUntil(io, [&] { return (*server)->connection_count() == 1; }));
  Client d(dir.File("sock"));
  d.Send("d\n");
  EXPECT_TRUE(RunUntil(io, [&] {
    d.Poll();
    return d.received() == "echo d\n";
  }));
  EXPECT_EQ((*server)->figures().refused, 1u);
}

// Connections between lines hold nothing; inside a line, that line so far.
TEST(LineServerLimitsTest, ConnectionsHoldOnlyTheirIncompleteLines) {
  TempDir dir;
  boost::asio::io_context io;
  Recorder rec;
  auto server =
      LineServer::ListenUnix(io, dir.File("sock"), PathPerms{}, 1024, EchoFactory(rec, false));
  ASSERT_TRUE(server.ok()) << server.status().message();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 50; ++i) {
    clients.push_back(std::make_unique<Client>(dir.File("sock")));
    clients.back()->Send("complete\n" + std::string(100, 'h'));
  }
  EXPECT_TRUE(RunUntil(io, [&] { return (*server)->figures().held_input_bytes == 5000; }));
  for (auto& c : clients) c->Send("\n");
  EXPECT_TRUE(RunUntil(io, [&] { return (*server)->figures().held_input_bytes == 0; }));
  for (auto& c : clients) {
    EXPECT_TRUE(RunUntil(io, [&] {
      c->Poll();
      return c->received() == "echo complete\necho " + std::string(100, 'h') + "\n";
    }));
  }
}

TEST(LineServerLimitsTest, BufferLimitClosesTheConnectionThatGrowsPastIt) {
  TempDir dir;
  boost::asio::io_context io;
  Recorder rec;
  LineServerLimits limits;
  limits.buffer_limit = 1000;
  auto server = LineServer::ListenUnix(io, dir.File("sock"), PathPerms{}, 4096,
                                       EchoFactory(rec, false), limits);
  ASSERT_TRUE(server.ok()) << server.status().message();
  Client first(dir.File("sock"));
  first.Send(std::string(600, 'a'));
  ASSERT_TRUE(RunUntil(io, [&] { return (*server)->figures().held_input_bytes == 600; }));
  Client second(dir.File("sock"));
  second.Send(std::string(600, 'b'));
  EXPECT_TRUE(RunUntil(io, [&] {
    second.Poll();
    return second.eof();
  }));
  EXPECT_EQ((*server)->figures().closed_buffer_limit, 1u);
  EXPECT_TRUE(RunUntil(io, [&] { return (*server)->figures().held_input_bytes == 600; }));
  first.Send("\n");
  EXPECT_TRUE(RunUntil(io, [&] {
    first.Poll();
    return first.received() == "echo " + std::string(600, 'a') + "\n";
  }));
}

TEST(LineServerLimitsTest, LineTooLongClosesAndIsCounted) {
  TempDir dir;
  boost::asio::io_context io;
  Recorder rec;
  auto server =
      LineServer::ListenUnix(io, dir.File("sock"), PathPerms{}, 100, EchoFactory(rec, false));
  ASSERT_TRUE(server.ok()) << server.status().message();
  Client c(dir.File("sock"));
  c.Send("fine\n" + std::string(101, 'x'));
  EXPECT_TRUE(RunUntil(io, [&] {
    c.Poll();
    return c.eof();
  }));
  EXPECT_EQ(c.received(), "echo fine\n");
  EXPECT_EQ((*server)->figures().closed_line_too_long, 1u);
  EXPECT_TRUE(RunUntil(io, [&] { return (*server)->figures().held_input_bytes == 0; }));
}

TEST(LineServerLimitsTest, LineTimeoutClosesAStalledLineOnly) {
  TempDir dir;
  boost::asio::io_context io;
  Recorder rec;
  LineServerLimits limits;
  limits.line_timeout = 100ms;
  auto server = LineServer::ListenUnix(io, dir.File("sock"), PathPerms{}, 1024,
                                       EchoFactory(rec, false), limits);
  ASSERT_TRUE(server.ok()) << server.status().message();
  Client idle(dir.File("sock")), stalled(dir.File("sock"));
  idle.Send("whole\n");
  stalled.Send("half a li");
  EXPECT_TRUE(RunUntil(io, [&] {
    stalled.Poll();
    return stalled.eof();
  }));
  EXPECT_EQ((*server)->figures().closed_line_timeout, 1u);
  // Between lines there is no deadline: the idle client outlives it.
  boost::asio::steady_timer later(io, 300ms);
  bool waited = false;
  later.async_wait([&](boost::system::error_code) { waited = true; });
  ASSERT_TRUE(RunUntil(io, [&] { return waited; }));
  idle.Send("again\n");
  EXPECT_TRUE(RunUntil(io, [&] {
    idle.Poll();
    return idle.received() == "echo whole\necho again\n";
  }));
  EXPECT_FALSE(idle.eof());
  EXPECT_EQ((*server)->figures().closed_line_timeout, 1u);
}

// A client that pipelines requests and never reads: its requests wait once
// its replies fill output_limit, and all are answered once it reads.
TEST(LineServerLimitsTest, PipelinedRequestsWaitWhileTheClientDoesNotRead) {
  TempDir dir;
  boost::asio::io_context io;
  int handled = 0;
  LineServerLimits limits;
  limits.output_limit = 128 * 1024;
  limits.write_timeout = 0ms;
  auto server = LineServer::ListenUnix(io, dir.File("sock"), PathPerms{}, 1024,
                                       ReplyFactory(handled, 64 * 1024), limits);
  ASSERT_TRUE(server.ok()) << server.status().message();
  Client c(dir.File("sock"));
  const int requests = 200;
  std::string all;
  for (int i = 0; i < requests; ++i) all += "EXPORT global\n";
  c.Send(all);
  // The loop settles: nothing more is handled while the client reads nothing.
  int seen = -1;
  for (int round = 0; round < 5 && seen != handled; ++round) {
    seen = handled;
    boost::asio::steady_timer settle(io, 100ms);
    bool settled = false;
    settle.async_wait([&](boost::system::error_code) { settled = true; });
    RunUntil(io, [&] { return settled; });
  }
  EXPECT_EQ(seen, handled);
  EXPECT_LT(handled, requests / 2);
  EXPECT_LE((*server)->figures().queued_output_bytes, limits.output_limit + 64 * 1024);
  EXPECT_TRUE(RunUntil(io, [&] {
    c.Poll();
    return c.received().size() == static_cast<std::size_t>(requests) * 64 * 1024;
  }));
  EXPECT_EQ(handled, requests);
}

TEST(LineServerLimitsTest, WriteTimeoutClosesAClientThatDoesNotRead) {
  TempDir dir;
  boost::asio::io_context io;
  int handled = 0;
  LineServerLimits limits;
  limits.write_timeout = 100ms;
  auto server = LineServer::ListenUnix(io, dir.File("sock"), PathPerms{}, 1024,
                                       ReplyFactory(handled, 1024 * 1024), limits);
  ASSERT_TRUE(server.ok()) << server.status().message();
  Client c(dir.File("sock"));
  c.Send("EXPORT global\n");
  EXPECT_TRUE(RunUntil(io, [&] { return (*server)->figures().closed_write_timeout == 1; }));
  EXPECT_TRUE(RunUntil(io, [&] { return (*server)->connection_count() == 0; }));
  EXPECT_EQ((*server)->figures().queued_output_bytes, 0u);
}

TEST(RunContainedTest, LoopGoesOnAfterAHandlerThrows) {
  boost::asio::io_context io;
  int ran = 0;
  boost::asio::post(io, [] { throw std::runtime_error("injected"); });
  boost::asio::post(io, [&] { ++ran; });
  boost::asio::post(io, [] { throw 42; });
  boost::asio::post(io, [&] { ++ran; });
  EXPECT_EQ(RunContained(io, [] { return false; }), 2u);
  EXPECT_EQ(ran, 2);
}

TEST(RunContainedTest, ThrowWhileStoppingEndsTheRun) {
  boost::asio::io_context io;
  int ran = 0;
  boost::asio::post(io, [] { throw std::runtime_error("injected"); });
  boost::asio::post(io, [&] { ++ran; });
  EXPECT_EQ(RunContained(io, [] { return true; }), 1u);
  EXPECT_EQ(ran, 0);
}

TEST(SpawnTest, CompletionSeesTheExceptionOfTheCoroutine) {
  boost::asio::io_context io;
  std::string seen;
  bool normal_end = false;
  Spawn(
      io, "test",
      []() -> boost::asio::awaitable<void> {
        throw std::runtime_error("injected");
        co_return;
      }(),
      [&](std::exception_ptr e) { seen = e ? DescribeException(e) : "none"; });
  Spawn(
      io, "test", []() -> boost::asio::awaitable<void> { co_return; }(),
      [&](std::exception_ptr e) { normal_end = !e; });
  // A throw from the completion itself stays inside Spawn.
  Spawn(
      io, "test", []() -> boost::asio::awaitable<void> { co_return; }(),
      [](std::exception_ptr) { throw std::runtime_error("cleanup"); });
  EXPECT_EQ(RunContained(io, [] { return false; }), 0u);
  EXPECT_EQ(seen, "injected");
  EXPECT_TRUE(normal_end);
}

}  // namespace
}  // namespace mailscope::net
