// Black-box tests of the daemon: a real Daemon runs in this process, on a
// thread of its own, with a temporary run and data directory, and is driven
// only through its sockets, as Dovecot's processes, doveadm, `mailscope tail`
// and a Prometheus scraper do. Needs no root and no peer installed. Every wait
// polls a socket up to a deadline; no assertion depends on timing.
#include "serve/daemon.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/event.h"
#include "core/tab_escape.h"
#include "filter/filter.h"
#include "net/slow_fifo_testing.h"
#include "serve/config.h"

namespace mailscope::serve {
namespace {

using namespace std::chrono_literals;
using Deadline = std::chrono::steady_clock::time_point;

// How long any one wait may take. Generous: a passing run waits for at most
// one FILTER push (1 s) at a time.
constexpr std::chrono::milliseconds kWait = 5s;

Deadline Within(std::chrono::milliseconds wait = kWait) {
  return std::chrono::steady_clock::now() + wait;
}

// A blocking client of one stream socket whose reads give up at a deadline.
// Move-only; owns the descriptor.
class Client {
 public:
  static Client Unix(const std::string& path) {
    Client c;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return c.Failed("socket path too long: " + path);
    std::memcpy(addr.sun_path, path.data(), path.size());
    c.fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd_ < 0 || ::connect(c.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      return c.Failed("connect " + path + ": " + std::strerror(errno));
    }
    return c;
  }

  // `address` is "IPv4:PORT".
  static Client Tcp(const std::string& address) {
    Client c;
    const std::size_t colon = address.rfind(':');
    if (colon == std::string::npos) return c.Failed("no port in '" + address + "'");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    std::uint16_t port = 0;
    const char* port_end = address.data() + address.size();
    if (std::from_chars(address.data() + colon + 1, port_end, port).ptr != port_end ||
        ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) != 1) {
      return c.Failed("bad address '" + address + "'");
    }
    addr.sin_port = htons(port);
    c.fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd_ < 0 || ::connect(c.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      return c.Failed("connect " + address + ": " + std::strerror(errno));
    }
    return c;
  }

  Client(Client&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)),
        buf_(std::move(other.buf_)),
        eof_(other.eof_),
        error_(std::move(other.error_)) {}
  Client& operator=(Client&&) = delete;
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }

  bool ok() const { return fd_ >= 0; }
  // Half-closes, as Exim's ${readsocket} does after its request.
  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }
  const std::string& error() const { return error_; }
  // The peer closed the connection and every byte it sent was read.
  bool eof() const { return eof_ && buf_.empty(); }

  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // The next line without its LF; nullopt at EOF or when the deadline passes.
  std::optional<std::string> ReadLine(Deadline deadline = Within()) {
    for (;;) {
      if (const std::size_t lf = buf_.find('\n'); lf != std::string::npos) {
        std::string line = buf_.substr(0, lf);
        buf_.erase(0, lf + 1);
        return line;
      }
      if (!Fill(deadline)) return std::nullopt;
    }
  }

  // Lines up to the first one that `stop` accepts, that one included. The
  // last line is the accepted one unless EOF or the deadline came first.
  std::vector<std::string> ReadLinesUntil(const std::function<bool(std::string_view)>& stop,
                                          Deadline deadline = Within()) {
    std::vector<std::string> lines;
    while (auto line = ReadLine(deadline)) {
      lines.push_back(std::move(*line));
      if (stop(lines.back())) break;
    }
    return lines;
  }

  // Everything up to EOF, or up to the deadline.
  std::string ReadToEof(Deadline deadline = Within()) {
    while (!eof_ && Fill(deadline)) {
    }
    return std::exchange(buf_, {});
  }

  // What has been read and not yet taken; Fill() appends to it.
  std::string& buffer() { return buf_; }
  // Reads once, waiting up to the deadline. False at EOF, error or timeout.
  bool Fill(Deadline deadline) {
    if (eof_) return false;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      const int rc = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
      if (rc < 0 && errno == EINTR) continue;
      if (rc <= 0) return false;
      char chunk[16384];
      const ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof_ = true;
        return false;
      }
      buf_.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
  }

 private:
  Client() = default;
  // Closes the descriptor and keeps `error` for error().
  Client&& Failed(std::string error) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    error_ = std::move(error);
    return std::move(*this);
  }

  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
  std::string error_;
};

// Dovecot's tab-unescaping of one field (a FILTER line's filter).
std::string Unescaped(std::string_view field) {
  std::string s(field);
  return std::string(UnescapeTabInPlace(std::span<char>(s.data(), s.size())));
}

// ---- HTTP -------------------------------------------------------------------

struct HttpReply {
  int status = 0;  // 0: no response; see error
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string error;

  // The first header named `name` (case-insensitively), or "".
  std::string header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (n.size() == name.size() &&
          std::equal(n.begin(), n.end(), name.begin(), [](unsigned char a, unsigned char b) {
            return std::tolower(a) == std::tolower(b);
          })) {
        return v;
      }
    }
    return {};
  }
};

std::ostream& operator<<(std::ostream& os, const HttpReply& r) {
  return os << "HTTP " << r.status << " " << r.error << "\n" << r.body;
}

// One request on a fresh connection: the response is read up to its
// Content-Length, or to EOF when it has none.
HttpReply Http(const std::string& address, std::string_view method, std::string_view target,
               std::string_view content_type = {}, std::string_view body = {}) {
  HttpReply reply;
  Client c = Client::Tcp(address);
  if (!c.ok()) {
    reply.error = c.error();
    return reply;
  }
  std::string request = std::string(method) + " " + std::string(target) +
                        " HTTP/1.1\r\nHost: " + address + "\r\nConnection: close\r\n";
  if (!content_type.empty()) request += "Content-Type: " + std::string(content_type) + "\r\n";
  if (method == "POST" || !body.empty()) {
    request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n";
  request += body;
  if (!c.Send(request)) {
    reply.error = "send failed";
    return reply;
  }
  const Deadline deadline = Within();
  std::size_t head_end;
  while ((head_end = c.buffer().find("\r\n\r\n")) == std::string::npos) {
    if (!c.Fill(deadline)) {
      reply.error = "no complete response head: " + c.buffer();
      return reply;
    }
  }
  const std::string head = c.buffer().substr(0, head_end);
  c.buffer().erase(0, head_end + 4);
  std::size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.1 ")) {
    reply.error = "bad status line: " + status_line;
    return reply;
  }
  std::from_chars(status_line.data() + 9, status_line.data() + 12, reply.status);
  while (line_end != std::string::npos) {
    const std::size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string line = head.substr(start, line_end - start);
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::size_t value = colon + 1;
    while (value < line.size() && line[value] == ' ') ++value;
    reply.headers.emplace_back(line.substr(0, colon), line.substr(value));
  }
  const std::string length = reply.header("Content-Length");
  if (length.empty()) {
    reply.body = c.ReadToEof(deadline);
    return reply;
  }
  std::size_t want = 0;
  if (std::from_chars(length.data(), length.data() + length.size(), want).ptr !=
      length.data() + length.size()) {
    reply.error = "bad Content-Length: " + length;
    return reply;
  }
  while (c.buffer().size() < want && c.Fill(deadline)) {
  }
  reply.body = c.buffer().substr(0, want);
  if (reply.body.size() < want) reply.error = "body cut short";
  return reply;
}

// The value of the sample written exactly `sample` ("name{label=...}") on a
// Prometheus text page, or nullopt when the page has no such line.
std::optional<double> Sample(std::string_view page, std::string_view sample) {
  std::size_t pos = 0;
  while (pos < page.size()) {
    std::size_t end = page.find('\n', pos);
    if (end == std::string_view::npos) end = page.size();
    std::string_view line = page.substr(pos, end - pos);
    pos = end + 1;
    if (line.size() <= sample.size() || !line.starts_with(sample) || line[sample.size()] != ' ') {
      continue;
    }
    line.remove_prefix(sample.size() + 1);
    double v = 0;
    if (std::from_chars(line.data(), line.data() + line.size(), v).ec != std::errc()) {
      return std::nullopt;
    }
    return v;
  }
  return std::nullopt;
}

std::string EventsTotal(std::string_view source, std::string_view event) {
  return "mailscope_events_total{source=\"" + std::string(source) + "\",event=\"" +
         std::string(event) + "\"}";
}

// ---- Dovecot's peers ------------------------------------------------------

// A Dovecot event as a process has it: name, one category, string fields.
struct DovecotEvent {
  std::string name;
  std::string category;
  std::vector<std::pair<std::string, std::string>> fields;

  // The EVENT line a process writes (client-writer.c): global id, parent id,
  // log type (debug, as Dovecot's stats events are), the creation time, then
  // the items: l<last sent time>, n<name>, c<category>, S<key> <value> per
  // string field.
  std::string WriterLine() const {
    std::string line = "EVENT\t0\t0\t0\t1795305644\t186445\tl1795305644\t186564\tn";
    AppendTabEscaped(line, name);
    line += "\tc";
    AppendTabEscaped(line, category);
    for (const auto& [key, value] : fields) {
      line += "\tS";
      AppendTabEscaped(line, key);
      line += '\t';
      AppendTabEscaped(line, value);
    }
    line += '\n';
    return line;
  }

  // Whether a Dovecot process sends this event under the FILTER `text`: the
  // text in Dovecot's language, tried on the event as the process holds it,
  // without any of the keys mailscope adds (source, kind, outcome, ...).
  bool SentUnder(const std::string& text) const {
    auto parsed = filter::Parse(text, filter::Dialect::kDovecot);
    EXPECT_TRUE(parsed.ok()) << "FILTER does not parse in Dovecot's language: " << text;
    if (!parsed.ok()) return false;
    Event e;
    e.source = Source::kDovecot;
    e.level = Level::kDebug;
    e.name = InternName(name);
    e.categories.push_back(InternName(category));
    for (const auto& [key, value] : fields) e.Add(InternName(key), Value::String(value));
    return parsed->Matches(e);
  }
};

const DovecotEvent kImapSelect{"imap_command_finished",
                               "imap",
                               {{"user", "carol@example.com"},
                                {"cmd_name", "SELECT"},
                                {"tagged_reply_state", "OK"},
                                {"tagged_reply", "OK [READ-WRITE] Select completed"}}};
const DovecotEvent kImapFailed{
    "imap_command_finished",
    "imap",
    {{"user", "carol@example.com"}, {"cmd_name", "FETCH"}, {"tagged_reply_state", "NO"}}};
const DovecotEvent kLoginOk{"auth_request_finished",
                            "auth",
                            {{"success", "yes"},
                             {"mechanism", "PLAIN"},
                             {"service", "imap"},
                             {"remote_ip", "127.0.0.1"},
                             {"user", "carol@example.com"}}};
const DovecotEvent kLoginFailed{"auth_request_finished",
                                "auth",
                                {{"success", "no"},
                                 {"error", "Password mismatch"},
                                 {"mechanism", "PLAIN"},
                                 {"service", "imap"},
                                 {"remote_ip", "127.0.0.1"},
                                 {"user", "alice@example.com"}}};
// As 2.3.19 really sends a failed login: no `success` field at all.
const DovecotEvent kLoginFailedNoField{"auth_request_finished",
                                       "auth",
                                       {{"policy_result", "ok"},
                                        {"mechanism", "PLAIN"},
                                        {"service", "imap"},
                                        {"remote_ip", "127.0.0.1"},
                                        {"user", "alice@example.com"}}};
const DovecotEvent kDelivery{"mail_delivery_finished", "lmtp", {{"message_size", "1234"}}};

// One Dovecot process on the stats-writer socket. The server greets with
// its VERSION and the FILTER of the events it wants, and sends a new FILTER
// whenever that changes; the process sends its VERSION and categories, then
// events.
class StatsWriter {
 public:
  explicit StatsWriter(const std::string& path) : client_(Client::Unix(path)) {}

  // Both halves of the handshake; the greeting's FILTER is kept in filters().
  ::testing::AssertionResult Handshake() {
    if (!client_.ok()) return ::testing::AssertionFailure() << client_.error();
    client_.Send(
        "VERSION\tstats-client\t4\t0\nCATEGORY\tservice:imap\nCATEGORY\timap\n"
        "CATEGORY\tauth\nCATEGORY\tlmtp\n");
    auto version = client_.ReadLine();
    if (version != "VERSION\tstats-server\t4\t0") {
      return ::testing::AssertionFailure() << "greeting: " << version.value_or("(none)");
    }
    if (!NextFilter()) return ::testing::AssertionFailure() << "no FILTER after VERSION";
    return ::testing::AssertionSuccess();
  }

  bool Send(const DovecotEvent& event) { return client_.Send(event.WriterLine()); }

  // Waits for the next FILTER line and returns its filter; nullopt at the
  // deadline or when something else arrives.
  std::optional<std::string> NextFilter(Deadline deadline = Within()) {
    auto line = client_.ReadLine(deadline);
    if (!line || !line->starts_with("FILTER\t")) return std::nullopt;
    filters_.push_back(Unescaped(std::string_view(*line).substr(7)));
    return filters_.back();
  }

  // FILTER lines until one satisfies `wanted`; that filter, or nullopt at
  // the deadline.
  std::optional<std::string> FilterWhere(const std::function<bool(const std::string&)>& wanted,
                                         Deadline deadline = Within()) {
    if (!filters_.empty() && wanted(filters_.back())) return filters_.back();
    while (auto f = NextFilter(deadline)) {
      if (wanted(*f)) return f;
    }
    return std::nullopt;
  }

  // Every filter received, the greeting's first.
  const std::vector<std::string>& filters() const { return filters_; }
  Client& client() { return client_; }

 private:
  Client client_;
  std::vector<std::string> filters_;
};

// doveadm on the stats-reader socket.
class StatsReader {
 public:
  explicit StatsReader(const std::string& path) : client_(Client::Unix(path)) {}

  ::testing::AssertionResult Handshake() {
    if (!client_.ok()) return ::testing::AssertionFailure() << client_.error();
    auto version = client_.ReadLine();
    if (version != "VERSION\tstats-reader-server\t2\t0") {
      return ::testing::AssertionFailure() << "greeting: " << version.value_or("(none)");
    }
    client_.Send("VERSION\tstats-reader-client\t2\t0\n");
    return ::testing::AssertionSuccess();
  }

  // `doveadm stats add NAME FILTER`: METRICS-ADD name, description, fields,
  // group_by, filter, exporter, exporter_include. The reply line: "+" or
  // "-<error>".
  std::string Add(std::string_view name, std::string_view filter_text) {
    std::string line = "METRICS-ADD\t";
    AppendTabEscaped(line, name);
    line += "\t\t\t\t";
    AppendTabEscaped(line, filter_text);
    line += "\t\t\n";
    client_.Send(line);
    return client_.ReadLine().value_or("(no reply)");
  }

  // `doveadm stats dump`: the count of every metric and sub-metric.
  std::map<std::string, std::uint64_t> DumpCounts() {
    std::map<std::string, std::uint64_t> counts;
    client_.Send("DUMP\tcount\n");
    while (auto line = client_.ReadLine()) {
      if (line->empty()) break;  // the end of the dump
      std::vector<std::string_view> cols;
      SplitTabEscaped(std::span<char>(line->data(), line->size()), cols);
      std::uint64_t n = 0;
      if (cols.size() >= 2) std::from_chars(cols[1].data(), cols[1].data() + cols[1].size(), n);
      counts[std::string(cols.empty() ? "" : cols[0])] = n;
    }
    return counts;
  }

  Client& client() { return client_; }

 private:
  Client client_;
};

// `mailscope tail --filter FILTER`: the request, then the server's OK.
::testing::AssertionResult OpenTail(Client& tail, std::string_view filter_text) {
  if (!tail.ok()) return ::testing::AssertionFailure() << tail.error();
  std::string request = "TAIL\t1\ttext\tmailscope\t";
  AppendTabEscaped(request, filter_text);
  request += '\n';
  tail.Send(request);
  auto reply = tail.ReadLine();
  if (reply != "OK") {
    return ::testing::AssertionFailure()
           << "TAIL " << filter_text << ": " << reply.value_or("(none)");
  }
  return ::testing::AssertionSuccess();
}

// Whether a tail line ("E\t<time> <source> <name> ...") carries that event.
bool TailShows(std::string_view line, std::string_view source, std::string_view event) {
  return line.starts_with("E\t") && line.find(" " + std::string(source) + " " + std::string(event) +
                                              " ") != std::string_view::npos;
}

// ---- the fixture ------------------------------------------------------------

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/mailscope-daemon-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr) << std::strerror(errno);
    root_ = dir;
    run_dir_ = root_ + "/run";
    data_dir_ = root_ + "/data";
    options_.after_reload_for_testing = [this](const Status& st) {
      {
        std::lock_guard lock(reload_mu_);
        reloads_.push_back(st);
      }
      reload_done_.notify_all();
    };
  }

  void TearDown() override {
    StopDaemon();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  // The configuration `toml`, after a [serve] table that points at the
  // temporary directories and asks for HTTP on a free loopback port.
  std::string WithServe(std::string_view toml) const {
    return "[serve]\nrun_dir = \"" + run_dir_ + "\"\ndata_dir = \"" + data_dir_ +
           "\"\nhttp = \"127.0.0.1:0\"\n\n" + std::string(toml);
  }

  // Starts a daemon on `toml` (see WithServe) and runs it on a thread.
  void StartDaemon(std::string_view toml = {}) {
    auto config = ParseConfig(WithServe(toml), "test.toml");
    ASSERT_TRUE(config.ok()) << config.status().message();
    daemon_ = std::make_unique<Daemon>(std::move(*config), config_path_, options_);
    Status st = daemon_->Start();
    ASSERT_TRUE(st.ok()) << st.message();
    http_ = daemon_->http_address();
    ASSERT_FALSE(http_.empty());
    std::promise<void> done;
    stopped_ = done.get_future();
    runner_ = std::jthread([this, done = std::move(done)]() mutable {
      daemon_->Run();
      done.set_value();
    });
  }

  // Stops the daemon and waits for Run() to return.
  void StopDaemon() {
    if (!daemon_) return;
    daemon_->Stop();
    if (stopped_.valid() && stopped_.wait_for(kWait) != std::future_status::ready) {
      // The loop thread cannot be joined: report, and end the binary.
      std::fprintf(stderr, "Daemon::Run() did not return within %lld ms of Stop()\n",
                   static_cast<long long>(kWait.count()));
      std::abort();
    }
    if (runner_.joinable()) runner_.join();
    daemon_.reset();
  }

  std::string RunPath(std::string_view name) const { return run_dir_ + "/" + std::string(name); }

  // Writes `toml` (see WithServe) to the configuration file that a daemon
  // started from now on reloads.
  void WriteConfigFile(std::string_view toml) {
    config_path_ = root_ + "/mailscope.toml";
    std::ofstream(config_path_, std::ios::trunc) << WithServe(toml);
  }

  // Asks the daemon to reload, as SIGHUP does, and waits until it has applied
  // the file (OK) or refused it (the error).
  Status Reload() {
    daemon_->Reload();
    return NextReload();
  }

  // The outcome of the next reload the daemon finishes.
  Status NextReload() {
    std::unique_lock lock(reload_mu_);
    if (!reload_done_.wait_for(lock, kWait, [this] { return !reloads_.empty(); }))
      return Unavailable("no reload finished within the deadline");
    Status st = reloads_.front();
    reloads_.pop_front();
    return st;
  }

  HttpReply Get(std::string_view target) { return Http(http_, "GET", target); }
  HttpReply Post(std::string_view target, std::string_view content_type, std::string_view body) {
    return Http(http_, "POST", target, content_type, body);
  }

  // Polls /metrics until `done` holds for the page or the deadline passes;
  // returns the last page read.
  std::string WaitForMetrics(const std::function<bool(const std::string&)>& done) {
    const Deadline deadline = Within();
    std::string page;
    for (;;) {
      HttpReply r = Get("/metrics");
      page = r.status == 200 ? r.body : std::string();
      if (done(page) || std::chrono::steady_clock::now() >= deadline) return page;
      std::this_thread::sleep_for(20ms);  // between polls; the poll decides
    }
  }

  std::string root_, run_dir_, data_dir_, http_;
  std::string config_path_;  // empty: the daemon has no file to reload
  std::mutex reload_mu_;
  std::condition_variable reload_done_;
  std::deque<Status> reloads_;  // outcomes not yet taken by NextReload()
  // Set before StartDaemon(); signals stay with the test runner.
  Daemon::Options options_ = [] {
    Daemon::Options o;
    o.handle_signals = false;
    return o;
  }();
  std::unique_ptr<Daemon> daemon_;
  std::future<void> stopped_;
  std::jthread runner_;
};

// ---- lifecycle and HTTP -----------------------------------------------------

TEST_F(DaemonTest, StopsWithClientsConnectedAndRemovesItsSockets) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  for (const char* name : {"stats-writer", "stats-reader", "tail", "old-stats"}) {
    EXPECT_TRUE(std::filesystem::is_socket(RunPath(name))) << name;
  }
  for (const char* name : {"old-stats-mail", "old-stats-user"}) {
    EXPECT_TRUE(std::filesystem::is_fifo(RunPath(name))) << name;
  }
  StatsWriter writer(RunPath("stats-writer"));
  ASSERT_TRUE(writer.Handshake());
  StatsReader reader(RunPath("stats-reader"));
  ASSERT_TRUE(reader.Handshake());
  Client tail = Client::Unix(RunPath("tail"));
  ASSERT_TRUE(OpenTail(tail, ""));
  // /metrics shows each socket's open connections (its own HTTP one aside).
  const std::string page = WaitForMetrics([](const std::string& p) {
    return p.find("mailscope_listener_connections{listener=\"tail\"} 1\n") != std::string::npos;
  });
  for (const char* line :
       {"mailscope_listener_connections{listener=\"stats-writer\"} 1\n",
        "mailscope_listener_connections{listener=\"stats-reader\"} 1\n",
        "mailscope_listener_connections{listener=\"old-stats\"} 0\n",
        "mailscope_listener_handler_faults_total{listener=\"old-stats-mail\"} 0\n",
        "mailscope_listener_accept_failures_total{listener=\"tail\"} 0\n"}) {
    EXPECT_NE(page.find(line), std::string::npos) << line;
  }
  EXPECT_EQ(page.find("mailscope_listener_connections{listener=\"old-stats-mail\"}"),
            std::string::npos);

  StopDaemon();
  // Each client sees its connection end.
  for (Client* client : {&writer.client(), &reader.client(), &tail}) {
    client->ReadToEof();
    EXPECT_TRUE(client->eof());
  }
  for (const char* name : {"stats-writer", "stats-reader", "tail", "old-stats"}) {
    EXPECT_FALSE(std::filesystem::exists(RunPath(name))) << name;
  }
  // Writers may hold a FIFO open across a restart: the FIFOs stay.
  EXPECT_TRUE(std::filesystem::is_fifo(RunPath("old-stats-mail")));
}

// Nothing in the run directory is writable by other users by default: the
// FIFOs and stats-writer let mailscope's group write, the rest only itself.
TEST_F(DaemonTest, ListenersDefaultToOwnerAndGroupOnly) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  struct stat st {};
  ASSERT_EQ(::stat(run_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u) << "a run directory mailscope creates";
  const std::pair<const char*, mode_t> expected[] = {
      {"old-stats-mail", 0660}, {"old-stats-user", 0660}, {"stats-writer", 0660},
      {"old-stats", 0600},      {"stats-reader", 0600},   {"tail", 0600}};
  for (const auto& [name, mode] : expected) {
    ASSERT_EQ(::lstat(RunPath(name).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_mode & 07777, mode) << name;
    EXPECT_EQ(st.st_uid, ::geteuid()) << name;
    EXPECT_EQ(st.st_gid, ::getegid()) << name;
  }
}

// Each socket and FIFO takes its own [listeners.NAME]; the run directory an
// administrator made keeps the mode given to it.
TEST_F(DaemonTest, EachListenerTakesItsOwnSettingsAndTheRunDirectoryKeepsItsMode) {
  ASSERT_EQ(::mkdir(run_dir_.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(run_dir_.c_str(), 0750), 0);
  const group* gr = ::getgrgid(::getegid());
  ASSERT_NE(gr, nullptr);
  const std::string group_name = gr->gr_name;
  ASSERT_NO_FATAL_FAILURE(StartDaemon("[listeners.stats_writer]\nmode = \"0620\"\ngroup = \"" +
                                      group_name +
                                      "\"\n[listeners.old_stats_user]\nmode = \"0600\"\n"
                                      "[listeners.tail]\nmode = \"0660\"\n"));
  struct stat st {};
  ASSERT_EQ(::stat(run_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  const std::pair<const char*, mode_t> expected[] = {
      {"old-stats-mail", 0660}, {"old-stats-user", 0600}, {"stats-writer", 0620},
      {"old-stats", 0600},      {"stats-reader", 0600},   {"tail", 0660}};
  for (const auto& [name, mode] : expected) {
    ASSERT_EQ(::lstat(RunPath(name).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_mode & 07777, mode) << name;
  }
}

TEST_F(DaemonTest, UnknownListenerGroupIsAStartError) {
  auto config = ParseConfig(
      WithServe("[listeners.stats_writer]\ngroup = \"no-such-group-mailscope\"\n"), "t.toml");
  ASSERT_TRUE(config.ok()) << config.status().message();
  Daemon::Options options;
  options.handle_signals = false;
  Daemon daemon(std::move(*config), std::string(), options);
  Status st = daemon.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("listeners.stats_writer: unknown group \"no-such-group-mailscope\""),
            std::string::npos)
      << st.message();
}

TEST_F(DaemonTest, AnswersHealthzAndRoutesByPathAndMethod) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  HttpReply health = Get("/healthz");
  EXPECT_EQ(health.status, 200) << health;
  EXPECT_EQ(health.body, "ok\n");

  HttpReply missing = Get("/no/such/page");
  EXPECT_EQ(missing.status, 404) << missing;

  HttpReply get = Get("/ingest/dovecot");
  EXPECT_EQ(get.status, 405) << get;
  EXPECT_EQ(get.header("Allow"), "POST");
  EXPECT_EQ(get.header("Content-Type"), "application/json");
  EXPECT_EQ(get.body, "{\"error\":\"method not allowed\",\"status\":405}");

  HttpReply metrics = Get("/metrics");
  EXPECT_EQ(metrics.status, 200) << metrics;
  EXPECT_NE(metrics.body.find("# TYPE mailscope_events_total counter\n"), std::string::npos);
}

TEST_F(DaemonTest, PostedEventsAreCounted) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  // The bodies of Dovecot's http-post event exporters, format tab-text and
  // json, on the ingest path and on the path earlier configurations name.
  for (const char* path : {"/ingest/dovecot", "/dovecot/events"}) {
    HttpReply tab =
        Post(path, "text/plain",
             "event:imap_command_finished\thostname:vm\tstart_time:1795305644.195092\t"
             "end_time:1795305644.198736\tcategory:service:imap\tcategory:imap\t"
             "field:user=carol@example.com\tfield:duration=3350\tfield:cmd_name=SELECT\t"
             "field:tagged_reply_state=OK");
    EXPECT_EQ(tab.status, 204) << path << ": " << tab;
    HttpReply json =
        Post(path, "application/json",
             R"({"event":"auth_request_finished","hostname":"vm",)"
             R"("start_time":"2026-11-22T00:00:44.186405Z",)"
             R"("end_time":"2026-11-22T00:00:44.187226Z","categories":["auth"],)"
             R"("fields":{"duration":119,"success":"yes","user":"carol@example.com"}})");
    EXPECT_EQ(json.status, 204) << path << ": " << json;
  }
  HttpReply xml = Post("/ingest/dovecot", "application/xml", "<event/>");
  EXPECT_EQ(xml.status, 415) << xml;
  EXPECT_EQ(xml.header("Content-Type"), "application/json");
  HttpReply broken = Post("/ingest/dovecot", "application/json", "{\"event\":");
  EXPECT_EQ(broken.status, 400) << broken;

  // A POST is dispatched before it is answered: no wait is needed.
  const std::string page = Get("/metrics").body;
  EXPECT_EQ(Sample(page, EventsTotal("dovecot", "imap_command_finished")), 2) << page;
  EXPECT_EQ(Sample(page, EventsTotal("dovecot", "auth_request_finished")), 2) << page;
  EXPECT_EQ(Sample(page,
                   "mailscope_ingest_rejected_total{source=\"dovecot\",reason="
                   "\"unsupported_content_type\"}"),
            1)
      << page;
  EXPECT_EQ(Sample(page,
                   "mailscope_ingest_rejected_total{source=\"dovecot\",reason="
                   "\"bad_json\"}"),
            1)
      << page;
}

// ---- event control ----------------------------------------------------------

constexpr std::string_view kImapDisabled = R"(
[events]
disabled = ["dovecot:imap_command_finished"]

[metrics.cmds]
filter = "event=imap_command_finished"

[metrics.logins]
filter = "event=auth_request_finished"
)";

TEST_F(DaemonTest, DisabledEventIsCountedButReachesNoOutput) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(kImapDisabled));
  // doveadm stats add, for the disabled event.
  StatsReader reader(RunPath("stats-reader"));
  ASSERT_TRUE(reader.Handshake());
  EXPECT_EQ(reader.Add("live_cmds", "event=imap_command_finished"), "+");
  // Two tails: every event, and the two events by name.
  Client all = Client::Unix(RunPath("tail"));
  ASSERT_TRUE(OpenTail(all, ""));
  Client named = Client::Unix(RunPath("tail"));
  ASSERT_TRUE(OpenTail(named, "event=imap_command_finished OR event=auth_request_finished"));

  StatsWriter writer(RunPath("stats-writer"));
  ASSERT_TRUE(writer.Handshake());
  // The disabled event first: one connection's events are dispatched in
  // order, so it has reached every output by the time the login has.
  ASSERT_TRUE(writer.Send(kImapSelect));
  ASSERT_TRUE(writer.Send(kLoginOk));

  for (Client* tail : {&all, &named}) {
    auto is_login = [](std::string_view l) {
      return TailShows(l, "dovecot", "auth_request_finished");
    };
    std::vector<std::string> lines = tail->ReadLinesUntil(is_login);
    ASSERT_FALSE(lines.empty());
    EXPECT_TRUE(is_login(lines.back())) << "the login never reached the tail";
    for (const std::string& line : lines) {
      EXPECT_EQ(line.find("imap_command_finished"), std::string::npos) << line;
    }
  }

  const std::string page = WaitForMetrics([](const std::string& p) {
    return Sample(p, EventsTotal("dovecot", "auth_request_finished")) == 1;
  });
  // It arrived, so it is counted; but no metric saw it.
  EXPECT_EQ(Sample(page, EventsTotal("dovecot", "imap_command_finished")), 1) << page;
  EXPECT_EQ(Sample(page, "mailscope_cmds_total"), 0) << page;
  EXPECT_EQ(Sample(page, "mailscope_logins_total"), 1) << page;
  EXPECT_EQ(Sample(page, "dovecot_live_cmds_total"), 0) << page;
  const auto counts = reader.DumpCounts();
  EXPECT_EQ(counts,
            (std::map<std::string, std::uint64_t>{{"cmds", 0}, {"logins", 1}, {"live_cmds", 0}}));
}

// ---- taxonomy -----------------------------------------------------------------

TEST_F(DaemonTest, FailedLoginsAreCountedByKindAndOutcome) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(R"(
[metrics.auth_failures]
filter = "kind=auth AND outcome=failure"
)"));
  StatsReader reader(RunPath("stats-reader"));
  ASSERT_TRUE(reader.Handshake());
  // doveadm's filter is read in Dovecot's language.
  EXPECT_EQ(reader.Add("auth_failed", "kind=\"auth\" AND outcome=\"failure\""), "+");

  StatsWriter writer(RunPath("stats-writer"));
  ASSERT_TRUE(writer.Handshake());
  // A failed command is a failure too, but not of kind auth.
  for (const DovecotEvent* e : {&kLoginOk, &kLoginFailed, &kImapFailed, &kLoginFailedNoField}) {
    ASSERT_TRUE(writer.Send(*e));
  }

  const std::string page = WaitForMetrics([](const std::string& p) {
    return Sample(p, EventsTotal("dovecot", "auth_request_finished")) == 3 &&
           Sample(p, EventsTotal("dovecot", "imap_command_finished")) == 1;
  });
  EXPECT_EQ(Sample(page,
                   "mailscope_taxonomy_events_total{kind=\"auth\",outcome=\"failure\","
                   "source=\"dovecot\"}"),
            2)
      << page;
  EXPECT_EQ(Sample(page,
                   "mailscope_taxonomy_events_total{kind=\"auth\",outcome=\"success\","
                   "source=\"dovecot\"}"),
            1)
      << page;
  EXPECT_EQ(Sample(page,
                   "mailscope_taxonomy_events_total{kind=\"command\",outcome=\"failure\","
                   "source=\"dovecot\"}"),
            1)
      << page;
  EXPECT_EQ(Sample(page, "mailscope_auth_failures_total"), 2) << page;
  EXPECT_EQ(Sample(page, "dovecot_auth_failed_total"), 2) << page;
  const auto counts = reader.DumpCounts();
  EXPECT_EQ(counts,
            (std::map<std::string, std::uint64_t>{{"auth_failures", 2}, {"auth_failed", 2}}));
}

// ---- the FILTER asked of Dovecot's processes ---------------------------------

TEST_F(DaemonTest, FilterAsksForTheCatalogEventsAndNeverForDisabledOnes) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(R"(
[events]
disabled = ["dovecot:imap_command_finished"]
)"));
  StatsWriter writer(RunPath("stats-writer"));
  ASSERT_TRUE(writer.Handshake());
  // Nothing wants an event yet.
  ASSERT_EQ(writer.filters().size(), 1u);
  EXPECT_EQ(writer.filters()[0], "");

  StatsReader reader(RunPath("stats-reader"));
  ASSERT_TRUE(reader.Handshake());
  ASSERT_EQ(reader.Add("auth_failed", "kind=auth AND outcome=failure"), "+");
  // Dovecot has no `kind` or `outcome`: the FILTER names the events that can
  // match. Whether one failed is decided on mailscope's side, so both kinds
  // of login are asked for.
  auto asks_for_logins = [](const std::string& f) { return kLoginFailed.SentUnder(f); };
  auto filter = writer.FilterWhere(asks_for_logins);
  ASSERT_TRUE(filter.has_value()) << "no FILTER asking for failed logins; last: "
                                  << writer.filters().back();
  EXPECT_NE(filter->find("auth_request_finished"), std::string::npos) << *filter;
  EXPECT_TRUE(kLoginOk.SentUnder(*filter)) << *filter;
  EXPECT_FALSE(kImapFailed.SentUnder(*filter)) << *filter;
  EXPECT_FALSE(kDelivery.SentUnder(*filter)) << *filter;

  // Outputs that would take the disabled event: a metric, a tail naming it,
  // and a tail of every event.
  EXPECT_EQ(reader.Add("cmds", "event=imap_command_finished"), "+");
  Client named = Client::Unix(RunPath("tail"));
  ASSERT_TRUE(OpenTail(named, "event=imap_command_finished"));
  Client all = Client::Unix(RunPath("tail"));
  ASSERT_TRUE(OpenTail(all, "event=*"));
  // The tail of every event makes the FILTER ask for everything else.
  filter = writer.FilterWhere([](const std::string& f) { return kDelivery.SentUnder(f); });
  ASSERT_TRUE(filter.has_value()) << "no FILTER asking for every event; last: "
                                  << writer.filters().back();
  EXPECT_TRUE(kLoginFailed.SentUnder(*filter)) << *filter;
  // A process connecting now is greeted with the same FILTER.
  StatsWriter late(RunPath("stats-writer"));
  ASSERT_TRUE(late.Handshake());
  EXPECT_EQ(late.filters().back(), *filter);

  for (const std::string& f : writer.filters()) {
    EXPECT_FALSE(kImapSelect.SentUnder(f)) << f;
    EXPECT_FALSE(kImapFailed.SentUnder(f)) << f;
  }
}

TEST_F(DaemonTest, FilterAsksForAnEventOneOutputStillTakes) {
  // Only metrics refuses the event; a tail still takes it.
  ASSERT_NO_FATAL_FAILURE(StartDaemon(R"(
[outputs.metrics]
disabled = ["dovecot:imap_command_finished"]

[metrics.cmds]
filter = "event=imap_command_finished"
)"));
  StatsWriter writer(RunPath("stats-writer"));
  ASSERT_TRUE(writer.Handshake());
  EXPECT_FALSE(kImapSelect.SentUnder(writer.filters()[0])) << writer.filters()[0];

  Client tail = Client::Unix(RunPath("tail"));
  ASSERT_TRUE(OpenTail(tail, "event=imap_command_finished"));
  auto filter = writer.FilterWhere([](const std::string& f) { return kImapSelect.SentUnder(f); });
  ASSERT_TRUE(filter.has_value()) << "no FILTER asking for the tail's event; last: "
                                  << writer.filters().back();
  EXPECT_FALSE(kLoginOk.SentUnder(*filter)) << *filter;

  ASSERT_TRUE(writer.Send(kImapSelect));
  auto line = tail.ReadLine();
  ASSERT_TRUE(line.has_value());
  EXPECT_TRUE(TailShows(*line, "dovecot", "imap_command_finished")) << *line;
  const std::string page = WaitForMetrics([](const std::string& p) {
    return Sample(p, EventsTotal("dovecot", "imap_command_finished")) == 1;
  });
  EXPECT_EQ(Sample(page, "mailscope_cmds_total"), 0) << page;
}

// ---- the stats-writer handshake -----------------------------------------------

TEST_F(DaemonTest, WriterWithTheWrongHandshakeIsClosedAndCounted) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  Client client = Client::Unix(RunPath("stats-writer"));
  ASSERT_TRUE(client.ok()) << client.error();
  // doveadm's stats-reader greeting on the writer socket.
  client.Send("VERSION\tstats-reader-client\t2\t0\n");
  client.ReadToEof();
  EXPECT_TRUE(client.eof());
  const std::string page = Get("/metrics").body;
  EXPECT_EQ(
      Sample(page, "mailscope_ingest_rejected_total{source=\"dovecot\",reason=\"wrong_service\"}"),
      1)
      << page;
}

// ---- Exim ---------------------------------------------------------------------

// One request per connection, ended by an LF or by the half-close: the
// verdict of the rules (or nothing) comes back, then the connection closes.
TEST_F(DaemonTest, EximRequestsAreAnsweredAndClosedOneEach) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(R"([[rules]]
name = "doc-net"
when = 'event="tcp:connect" AND host_address=192.0.2.*'
verdict = "not now"
)"));
  auto exchange = [&](std::string_view request, bool half_close) {
    Client c = Client::Unix(RunPath("exim-events"));
    EXPECT_TRUE(c.ok()) << c.error();
    c.Send(request);
    if (half_close) c.ShutdownWrite();
    std::string reply = c.ReadToEof();
    EXPECT_TRUE(c.eof()) << request;
    return reply;
  };
  EXPECT_EQ(exchange("event event_name=\"tcp:connect\" host_address=192.0.2.1", true), "not now");
  EXPECT_EQ(exchange("event event_name=\"tcp:connect\" host_address=198.51.100.1\n", false), "");
  EXPECT_EQ(exchange("event event_name=\"msg:delivery\" domain=example.org\n", false), "");
  EXPECT_EQ(exchange("hello\n", false), "");
  const std::string page = WaitForMetrics([](const std::string& p) {
    return Sample(p, "mailscope_events_total{source=\"exim\",event=\"msg:delivery\"}") == 1;
  });
  EXPECT_EQ(Sample(page, "mailscope_events_total{source=\"exim\",event=\"tcp:connect\"}"), 2)
      << page;
  EXPECT_EQ(Sample(page, "mailscope_events_total{source=\"exim\",event=\"mailscope:verdict\"}"), 1);
  EXPECT_EQ(
      Sample(page, "mailscope_ingest_rejected_total{source=\"exim\",reason=\"unknown_command\"}"),
      1);
}

// What a broken or hostile client of the exim-events socket gets: a request
// over 64 KiB closes its connection, one that never ends is closed after
// line_timeout; both are counted, and the socket serves the next client.
TEST_F(DaemonTest, EximRequestsTooLongOrNeverEndedAreClosedAndCounted) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon("[listeners.exim_events]\nline_timeout = 1\n"));
  Client huge = Client::Unix(RunPath("exim-events"));
  ASSERT_TRUE(huge.ok()) << huge.error();
  huge.Send("event event_name=\"msg:delivery\" event_data=\"" + std::string(70 * 1024, 'x'));
  EXPECT_EQ(huge.ReadToEof(), "");
  EXPECT_TRUE(huge.eof());
  Client stalled = Client::Unix(RunPath("exim-events"));
  ASSERT_TRUE(stalled.ok()) << stalled.error();
  stalled.Send("event event_name=\"msg:delivery\" domain=exa");  // and nothing more
  EXPECT_EQ(stalled.ReadToEof(Within(5s)), "");
  EXPECT_TRUE(stalled.eof());
  Client next = Client::Unix(RunPath("exim-events"));
  next.Send("event event_name=\"msg:delivery\" domain=example.org\n");
  EXPECT_EQ(next.ReadToEof(), "");
  const std::string page = Get("/metrics").body;
  EXPECT_EQ(
      Sample(page,
             "mailscope_listener_closed_total{listener=\"exim-events\",reason=\"line_too_long\"}"),
      1)
      << page;
  EXPECT_EQ(
      Sample(page,
             "mailscope_listener_closed_total{listener=\"exim-events\",reason=\"line_timeout\"}"),
      1);
  EXPECT_EQ(Sample(page, "mailscope_events_total{source=\"exim\",event=\"msg:delivery\"}"), 1);
}

// ---- old stats ----------------------------------------------------------------

TEST_F(DaemonTest, OldStatsRecordsReachTheExportSocket) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  // What imap's old_stats plugin writes when a session starts (captured).
  const std::string connect =
      "CONNECT\tHlsvK9Jgiu1/AAAB\tcarol@example.com\timap\t11843\tlip=127.0.0.1\t"
      "rip=127.0.0.1\n";
  const int fd = ::open(RunPath("old-stats-mail").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  const ssize_t written = ::write(fd, connect.data(), connect.size());
  ::close(fd);
  ASSERT_EQ(written, static_cast<ssize_t>(connect.size()));

  const std::string page = WaitForMetrics([](const std::string& p) {
    return Sample(p, EventsTotal("dovecot_old_stats", "CONNECT")) == 1;
  });
  EXPECT_EQ(Sample(page, EventsTotal("dovecot_old_stats", "CONNECT")), 1) << page;
  EXPECT_EQ(Sample(page, "mailscope_old_stats_connected_sessions"), 1) << page;

  // doveadm oldstats dump session.
  Client old_stats = Client::Unix(RunPath("old-stats"));
  ASSERT_TRUE(old_stats.ok()) << old_stats.error();
  old_stats.Send("EXPORT\tsession\n");
  std::vector<std::string> rows =
      old_stats.ReadLinesUntil([](std::string_view l) { return l.empty(); });
  ASSERT_GE(rows.size(), 2u);
  EXPECT_TRUE(rows[0].starts_with("session\tuser\tip\tservice\tpid\tconnected\t")) << rows[0];
  EXPECT_TRUE(
      rows[1].starts_with("HlsvK9Jgiu1/AAAB\tcarol@example.com\t127.0.0.1\timap\t11843\t1\t"))
      << rows[1];
}

// ---- faults -------------------------------------------------------------------

// Makes the handling of the events numbered in `failing` (0-based, in
// dispatch order) throw, as a bug in a decoder or an output would.
std::function<void(const Event&)> ThrowOnEvents(std::vector<int> failing) {
  return [failing = std::move(failing), n = 0](const Event&) mutable {
    if (std::find(failing.begin(), failing.end(), n++) != failing.end()) {
      throw std::runtime_error("injected");
    }
  };
}

void WriteFifo(const std::string& path, std::string_view text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  const ssize_t written = ::write(fd, text.data(), text.size());
  ::close(fd);
  ASSERT_EQ(written, static_cast<ssize_t>(text.size()));
}

TEST_F(DaemonTest, ThrowInAFifoLineDropsThatLineAndTheFifoKeepsFlowing) {
  options_.before_dispatch_for_testing = ThrowOnEvents({0});
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const std::string connects =
      "CONNECT\tAAAAAAAAAAAAAAA1\tcarol@example.com\timap\t11843\tlip=127.0.0.1\trip=127.0.0.1\n"
      "CONNECT\tAAAAAAAAAAAAAAA2\tdave@example.com\timap\t11844\tlip=127.0.0.1\trip=127.0.0.1\n";
  ASSERT_NO_FATAL_FAILURE(WriteFifo(RunPath("old-stats-mail"), connects));
  const std::string rejected =
      "mailscope_ingest_rejected_total{source=\"dovecot_old_stats\",reason=\"handler_error\"}";
  std::string page = WaitForMetrics([&](const std::string& p) {
    return Sample(p, EventsTotal("dovecot_old_stats", "CONNECT")) == 1 && Sample(p, rejected) == 1;
  });
  EXPECT_EQ(Sample(page, EventsTotal("dovecot_old_stats", "CONNECT")), 1) << page;
  EXPECT_EQ(Sample(page, rejected), 1) << page;
  // A later read of the same FIFO still reaches the stats.
  ASSERT_NO_FATAL_FAILURE(WriteFifo(
      RunPath("old-stats-mail"),
      "CONNECT\tAAAAAAAAAAAAAAA3\terin@example.com\timap\t11845\tlip=127.0.0.1\trip=127.0.0.1\n"));
  page = WaitForMetrics([](const std::string& p) {
    return Sample(p, EventsTotal("dovecot_old_stats", "CONNECT")) == 2;
  });
  EXPECT_EQ(Sample(page, EventsTotal("dovecot_old_stats", "CONNECT")), 2) << page;
  EXPECT_EQ(Sample(page, "mailscope_old_stats_connected_sessions"), 2) << page;
}

TEST_F(DaemonTest, ThrowInAWriterLineDropsThatLineAndTheConnectionKeepsFlowing) {
  options_.before_dispatch_for_testing = ThrowOnEvents({1});
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  StatsWriter writer(RunPath("stats-writer"));
  ASSERT_TRUE(writer.Handshake());
  for (const DovecotEvent* e : {&kLoginOk, &kLoginFailed, &kLoginOk}) ASSERT_TRUE(writer.Send(*e));
  const std::string rejected =
      "mailscope_ingest_rejected_total{source=\"dovecot\",reason=\"handler_error\"}";
  std::string page = WaitForMetrics([&](const std::string& p) {
    return Sample(p, EventsTotal("dovecot", "auth_request_finished")) == 2 &&
           Sample(p, rejected) == 1;
  });
  EXPECT_EQ(Sample(page, EventsTotal("dovecot", "auth_request_finished")), 2) << page;
  EXPECT_EQ(Sample(page, rejected), 1) << page;
  // The same connection is still read.
  ASSERT_TRUE(writer.Send(kLoginFailed));
  page = WaitForMetrics([](const std::string& p) {
    return Sample(p, EventsTotal("dovecot", "auth_request_finished")) == 3;
  });
  EXPECT_EQ(Sample(page, EventsTotal("dovecot", "auth_request_finished")), 3) << page;
}

// Clients' budgets end to end: a tail whose filter brings more new names
// than a client may add is refused with the reason, while another tail still
// adds its names; METRICS-ADD past its bound gets Dovecot's error reply.
TEST_F(DaemonTest, ClientsKeepTheirNameBudgetsAndMetricsAddItsBound) {
  ASSERT_NO_FATAL_FAILURE(
      StartDaemon("max_new_names_per_client = 2\n[stats]\nmax_dynamic_metrics = 1\n"));
  Client greedy = Client::Unix(RunPath("tail"));
  ASSERT_TRUE(greedy.ok()) << greedy.error();
  greedy.Send(
      "TAIL\t1\ttext\tmailscope\tdaemon_budget_a=1 OR daemon_budget_b=1 OR daemon_budget_c=1\n");
  const auto reply = greedy.ReadLine();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(*reply,
            "ERROR\tevent filter: no room for its 3 new names (names new to mailscope per "
            "client: at most 2, 2 left); the first past the room: 'daemon_budget_c' at 43");
  Client modest = Client::Unix(RunPath("tail"));
  EXPECT_TRUE(OpenTail(modest, "daemon_budget_a=1 OR daemon_budget_b=1"));

  StatsReader reader(RunPath("stats-reader"));
  ASSERT_TRUE(reader.Handshake());
  EXPECT_EQ(reader.Add("first", "event=x"), "+");
  EXPECT_EQ(reader.Add("second", "event=x"),
            "-METRICS-ADD: Too many metrics added at run time: 1 (stats.max_dynamic_metrics); "
            "remove one first");

  const std::string refused =
      "mailscope_names_refused_total{input=\"tail\",reason=\"client_budget\"}";
  const std::string page =
      WaitForMetrics([&](const std::string& p) { return Sample(p, refused) >= 3; });
  EXPECT_GE(Sample(page, refused), 3) << page;
}

// ---- configuration ------------------------------------------------------------

// ---- reload -------------------------------------------------------------------

// One login as Dovecot's tab-text exporter posts it; `n` makes each distinct.
std::string PostedLogin(int n) {
  return "event:auth_request_finished\thostname:vm\tstart_time:1795305644.186405\t"
         "end_time:1795305644.187226\tcategory:auth\tfield:success=yes\t"
         "field:user=user" +
         std::to_string(n) + "@example.com";
}

constexpr std::string_view kLoginsMetric = R"(
[metrics.logins]
filter = "event=auth_request_finished"
)";

TEST_F(DaemonTest, ReloadAppliesTheFileAndUnchangedMetricsKeepCounting) {
  WriteConfigFile(kLoginsMetric);
  ASSERT_NO_FATAL_FAILURE(StartDaemon(kLoginsMetric));
  ASSERT_EQ(Post("/ingest/dovecot", "text/plain", PostedLogin(1)).status, 204);
  EXPECT_EQ(Sample(Get("/metrics").body, "mailscope_logins_total"), 1);

  WriteConfigFile(std::string(kLoginsMetric) +
                  "[metrics.cmds]\nfilter = \"event=imap_command_finished\"\n");
  const Status st = Reload();
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(Post("/ingest/dovecot", "text/plain", PostedLogin(2)).status, 204);
  const std::string page = Get("/metrics").body;
  EXPECT_EQ(Sample(page, "mailscope_logins_total"), 2) << page;
  EXPECT_EQ(Sample(page, "mailscope_cmds_total"), 0) << page;
}

TEST_F(DaemonTest, AFailedReloadKeepsTheRunningConfiguration) {
  WriteConfigFile(kLoginsMetric);
  ASSERT_NO_FATAL_FAILURE(StartDaemon(kLoginsMetric));
  WriteConfigFile("[metrics.logins]\nfilter = \"event=\"\n[no_such_table]\n");
  const Status st = Reload();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.message();
  ASSERT_EQ(Post("/ingest/dovecot", "text/plain", PostedLogin(1)).status, 204);
  EXPECT_EQ(Sample(Get("/metrics").body, "mailscope_logins_total"), 1);
}

// Reloads asked for in a burst are coalesced: each is followed by a parse
// that sees the file as it was then, and the last state wins.
TEST_F(DaemonTest, ReloadsInABurstEndWithTheLastFileApplied) {
  WriteConfigFile(kLoginsMetric);
  ASSERT_NO_FATAL_FAILURE(StartDaemon(kLoginsMetric));
  for (int i = 0; i < 20; ++i) daemon_->Reload();
  WriteConfigFile("[metrics.cmds]\nfilter = \"event=imap_command_finished\"\n");
  daemon_->Reload();
  // At least one reload, at most one per request; the last one applied the
  // last file.
  int applied = 0;
  for (;;) {
    const std::string page = Get("/metrics").body;
    if (Sample(page, "mailscope_cmds_total") == 0 && !Sample(page, "mailscope_logins_total")) break;
    const Status st = NextReload();
    ASSERT_TRUE(st.ok()) << st.message();
    ASSERT_LE(++applied, 21);
  }
}

// A new format alone keeps the exporter's transport: the same file, the same
// counters.
TEST_F(DaemonTest, ReloadWithANewFormatKeepsTheExportersTransport) {
  const std::string path = root_ + "/exported.log";
  auto config = [&](std::string_view format) {
    return "[exporters.out]\nformat = \"" + std::string(format) +
           "\"\nformat_args = \"time-unix\"\ntransport = \"file\"\ntransport_args = \"" + path +
           "\"\n" + std::string(kLoginsMetric) + "exporter = \"out\"\n";
  };
  const std::string sent = "mailscope_exporter_events_total{exporter=\"out\",result=\"sent\"}";
  WriteConfigFile(config("json"));
  ASSERT_NO_FATAL_FAILURE(StartDaemon(config("json")));
  ASSERT_EQ(Post("/ingest/dovecot", "text/plain", PostedLogin(1)).status, 204);
  std::string page = WaitForMetrics([&](const std::string& p) { return Sample(p, sent) == 1; });
  EXPECT_EQ(Sample(page, sent), 1) << page;

  WriteConfigFile(config("tab-text"));
  const Status st = Reload();
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(Post("/ingest/dovecot", "text/plain", PostedLogin(2)).status, 204);
  page = WaitForMetrics([&](const std::string& p) { return Sample(p, sent) == 2; });
  EXPECT_EQ(Sample(page, sent), 2) << page;
  std::ifstream in(path);
  const std::string text{std::istreambuf_iterator<char>(in), {}};
  EXPECT_TRUE(text.starts_with("{\"event\":\"auth_request_finished\"")) << text;
  EXPECT_NE(text.find("\nevent:auth_request_finished\t"), std::string::npos) << text;
}

// Replacing a file exporter whose reader has stalled neither waits for the
// reader nor loses what the old exporter still holds.
TEST_F(DaemonTest, ReloadReplacingAStalledFileExporterNeverWaitsAndLosesNothing) {
  const std::string fifo_path = root_ + "/exported.fifo";
  net::SlowFifoForTesting fifo(fifo_path, kWait);
  ASSERT_TRUE(fifo.ok()) << std::strerror(errno);
  auto config = [&](const std::string& path) {
    return "[exporters.out]\nformat = \"json\"\nformat_args = \"time-unix\"\n"
           "transport = \"file\"\ntransport_args = \"" +
           path + "\"\n" + std::string(kLoginsMetric) + "exporter = \"out\"\n";
  };
  WriteConfigFile(config(fifo_path));
  ASSERT_NO_FATAL_FAILURE(StartDaemon(config(fifo_path)));
  constexpr int kEvents = 100;  // several times the pipe's 4 KiB
  for (int i = 0; i < kEvents; ++i) {
    ASSERT_EQ(Post("/ingest/dovecot", "text/plain", PostedLogin(i)).status, 204);
  }
  ASSERT_TRUE(fifo.WaitFull());

  const std::string file_path = root_ + "/exported.json";
  WriteConfigFile(config(file_path));
  const Status st = Reload();
  EXPECT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(Get("/healthz").status, 200);
  ASSERT_EQ(Post("/ingest/dovecot", "text/plain", PostedLogin(kEvents)).status, 204);

  const std::string old_lines = fifo.ReadLines(kEvents);
  EXPECT_EQ(std::count(old_lines.begin(), old_lines.end(), '\n'), kEvents);
  for (int i : {0, kEvents - 1}) {
    EXPECT_NE(old_lines.find("\"user" + std::to_string(i) + "@example.com\""), std::string::npos)
        << i;
  }
  StopDaemon();
  std::ifstream in(file_path);
  const std::string new_lines{std::istreambuf_iterator<char>(in), {}};
  EXPECT_NE(new_lines.find("\"user" + std::to_string(kEvents) + "@example.com\""),
            std::string::npos)
      << new_lines;
}

TEST_F(DaemonTest, UnknownOutputIsAConfigurationError) {
  auto config = ParseConfig(WithServe("[outputs.log]\nlevel = \"warn\"\n"), "test.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(
                "test.toml:6: outputs.log: unknown output; the outputs are old_stats, metrics, "
                "tail, exporters"),
            std::string::npos)
      << config.status().message();
}

}  // namespace
}  // namespace mailscope::serve
