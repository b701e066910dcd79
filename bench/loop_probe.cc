// loop_probe: how long an HTTP server takes to answer while something else happens to it.
//
// Sends `GET PATH` over one kept-alive TCP connection, waits for the whole answer, waits
// --interval-ms, and sends again, until --duration-s has passed or SIGTERM/SIGINT arrives. For a
// server that answers on one event loop (mailscope's /healthz), a round trip much longer than
// usual means the loop was busy with something else for that long. At the end it prints one
// line: the number of round trips, the median, 99th and 99.9th percentile and the longest, in
// milliseconds, and how many failed (a failed connection is opened again).
//
// Standalone: the C++ standard library and POSIX only, so the same binary measures any build.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kUsage =
    "usage: loop_probe --addr IPV4:PORT [--path /healthz] [--interval-ms 2]\n"
    "                  [--duration-s 10] [--timeout-ms 5000]\n";

std::atomic<bool> g_stop{false};

struct Options {
  std::string host;
  std::uint16_t port = 0;
  std::string path = "/healthz";
  std::uint64_t interval_ms = 2;
  std::uint64_t duration_s = 10;
  std::uint64_t timeout_ms = 5000;
};

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "loop_probe: %s\n", message.c_str());
  std::exit(2);
}

std::uint64_t Number(std::string_view flag, std::string_view text) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    Die("bad number for " + std::string(flag) + ": " + std::string(text));
  }
  return v;
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) Die(std::string(arg) + " needs a value\n" + kUsage);
    const std::string_view value = argv[++i];
    if (arg == "--addr") {
      const std::size_t colon = value.rfind(':');
      if (colon == std::string_view::npos) Die("--addr wants IPV4:PORT");
      o.host = std::string(value.substr(0, colon));
      const std::uint64_t port = Number(arg, value.substr(colon + 1));
      if (port == 0 || port > 65535) Die("--addr: bad port");
      o.port = static_cast<std::uint16_t>(port);
    } else if (arg == "--path") {
      o.path = std::string(value);
    } else if (arg == "--interval-ms") {
      o.interval_ms = Number(arg, value);
    } else if (arg == "--duration-s") {
      o.duration_s = Number(arg, value);
    } else if (arg == "--timeout-ms") {
      o.timeout_ms = Number(arg, value);
    } else {
      Die("unknown option " + std::string(arg) + "\n" + kUsage);
    }
  }
  if (o.host.empty()) Die(std::string("give --addr\n") + kUsage);
  return o;
}

int Connect(const Options& o) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(o.port);
  if (::inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) Die("bad address " + o.host);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// One request and its whole answer (headers, then Content-Length bytes of body). False on any
// error, a closed connection or the timeout.
bool RoundTrip(int fd, const std::string& request, const Options& o) {
  for (std::size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(o.timeout_ms);
  std::string in;
  std::size_t need = std::string::npos;  // bytes of the whole answer, once the headers are in
  char buf[4096];
  while (need == std::string::npos || in.size() < need) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    in.append(buf, static_cast<std::size_t>(n));
    if (need == std::string::npos) {
      const std::size_t end = in.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      if (in.compare(0, 12, "HTTP/1.1 200") != 0) return false;
      std::size_t length = 0;
      const std::size_t at = in.find("\r\nContent-Length: ");
      if (at != std::string::npos && at < end) {
        const char* first = in.data() + at + 18;
        std::from_chars(first, in.data() + end, length);
      }
      need = end + 4 + length;
    }
  }
  return true;
}

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseOptions(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGINT, [](int) { g_stop = true; });
  const std::string request =
      "GET " + o.path + " HTTP/1.1\r\nHost: " + o.host + "\r\nConnection: keep-alive\r\n\r\n";
  std::vector<double> rtt_ms;
  rtt_ms.reserve(o.duration_s * 1000 / std::max<std::uint64_t>(o.interval_ms, 1) + 16);
  std::uint64_t errors = 0;
  const auto end = Clock::now() + std::chrono::seconds(o.duration_s);
  int fd = -1;
  while (!g_stop && Clock::now() < end) {
    if (fd < 0) fd = Connect(o);
    if (fd < 0) {
      ++errors;
    } else {
      const auto start = Clock::now();
      if (RoundTrip(fd, request, o)) {
        rtt_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      } else {
        ++errors;
        ::close(fd);
        fd = -1;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(o.interval_ms));
  }
  if (fd >= 0) ::close(fd);
  std::sort(rtt_ms.begin(), rtt_ms.end());
  std::printf("samples=%zu p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f errors=%llu\n",
              rtt_ms.size(), Percentile(rtt_ms, 0.5), Percentile(rtt_ms, 0.99),
              Percentile(rtt_ms, 0.999), rtt_ms.empty() ? 0.0 : rtt_ms.back(),
              static_cast<unsigned long long>(errors));
  return 0;
}
