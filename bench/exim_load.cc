// exim_load: plays Exim's event_action against a UNIX socket the way
// ${readsocket} does (connect, write one request, half-close, read to EOF,
// close) from many clients at once, paced at a total rate, and reports the
// round-trip latency. Standalone (C++ standard library and POSIX).
//
//   exim_load --socket PATH [--clients N] [--rate R] [--seconds S] [--request FILE]
//             [--server-pid PID]
//
// --rate 0 sends as fast as the clients can (each starts its next request
// when the last one ends). Otherwise client i starts requests at i/R, i/R +
// N/R, ...: latency is counted from when a request was due, not from when
// it could be sent, so a server that falls behind shows it (no coordinated
// omission). With --server-pid the server's CPU time over the run (utime +
// stime from /proc) gives requests per CPU-second.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// A request as the shipped fragment makes it for a msg:delivery over SMTP.
constexpr const char* kDefaultRequest =
    "event hook=transport exim_version=4.96 event_name=\"msg:delivery\" "
    "event_data=\"250- 461 byte chunk, total 461\\\\n250 OK id=1xaInK-00045f-1S\" "
    "event_defer_errno=0 message_exim_id=1xaInK-00045c-1N sender_address=\"alice@test.local\" "
    "message_size=445 received_time=1796588714 domain=ok.example local_part=user "
    "host=127.0.0.1 host_address=127.0.0.1 host_port=2627 router_name=smarthost "
    "transport_name=remote_smtp verify_mode=\"\" lookup_dnssec_authenticated=\"\" "
    "sending_ip_address=127.0.0.1 sending_port=45542 tls_out_ver=TLS1.3 "
    "tls_out_cipher=\"TLS1.3:ECDHE_SECP256R1__RSA_PSS_RSAE_SHA256__AES_256_GCM:256\" "
    "tls_out_bits=256 tls_out_peerdn=\"CN=peer.test\" tls_out_sni=\"\" tls_out_dane=no "
    "tls_out_tlsa_usage=0 tls_out_certificate_verified=0 tls_in_ver=\"\" tls_in_cipher=\"\" "
    "tls_in_peerdn=\"\" sender_host_address=127.0.0.1 sender_host_port=60274 "
    "received_ip_address=127.0.0.1 received_port=2525 sender_host_authenticated=\"\" "
    "authenticated_fail_id=\"\" pid=15725\n";

struct Options {
  std::string socket;
  int clients = 1;
  double rate = 5000;
  double seconds = 10;
  std::string request = kDefaultRequest;
  long server_pid = 0;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "exim_load: %s\nusage: exim_load --socket PATH [--clients N] [--rate R] "
               "[--seconds S] [--request FILE] [--server-pid PID]\n",
               why);
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) Usage(("missing value for " + a).c_str());
    std::string v = argv[++i];
    if (a == "--socket") {
      o.socket = v;
    } else if (a == "--clients") {
      o.clients = std::atoi(v.c_str());
    } else if (a == "--rate") {
      o.rate = std::atof(v.c_str());
    } else if (a == "--seconds") {
      o.seconds = std::atof(v.c_str());
    } else if (a == "--request") {
      std::ifstream in(v, std::ios::binary);
      if (!in) Usage(("cannot read " + v).c_str());
      std::stringstream ss;
      ss << in.rdbuf();
      o.request = ss.str();
    } else if (a == "--server-pid") {
      o.server_pid = std::atol(v.c_str());
    } else {
      Usage(("unknown option " + a).c_str());
    }
  }
  if (o.socket.empty()) Usage("--socket is required");
  if (o.clients < 1 || o.seconds <= 0 || o.rate < 0) Usage("bad --clients, --seconds or --rate");
  return o;
}

// utime + stime of a process, in seconds.
double CpuSeconds(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Client {
  int fd = -1;
  Clock::time_point due;
  std::string reply;
};

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (o.socket.size() >= sizeof addr.sun_path) Usage("socket path too long");
  std::memcpy(addr.sun_path, o.socket.data(), o.socket.size());
  const int ep = epoll_create1(0);
  std::vector<Client> clients(static_cast<std::size_t>(o.clients));
  const auto start = Clock::now();
  const auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  const auto interval = o.rate > 0 ? std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(o.clients / o.rate))
                                   : Clock::duration::zero();
  for (std::size_t i = 0; i < clients.size(); ++i) {
    clients[i].due =
        start + (o.rate > 0 ? std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(static_cast<double>(i) / o.rate))
                            : Clock::duration::zero());
  }
  std::vector<double> latencies_us;
  latencies_us.reserve(static_cast<std::size_t>(std::max(1.0, o.rate) * o.seconds * 1.2));
  std::uint64_t failures = 0, nonempty = 0;
  const double cpu_before = o.server_pid ? CpuSeconds(o.server_pid) : 0;
  std::size_t active = 0;
  std::vector<epoll_event> events(1024);
  char buf[4096];
  for (;;) {
    const auto now = Clock::now();
    Clock::time_point next = Clock::time_point::max();
    for (std::size_t i = 0; i < clients.size(); ++i) {
      Client& c = clients[i];
      if (c.fd >= 0) continue;
      if (c.due >= end) continue;
      if (c.due > now) {
        next = std::min(next, c.due);
        continue;
      }
      c.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
          write(c.fd, o.request.data(), o.request.size()) !=
              static_cast<ssize_t>(o.request.size())) {
        ++failures;
        close(c.fd);
        c.fd = -1;
        c.due = o.rate > 0 ? c.due + interval : Clock::now();
        continue;
      }
      shutdown(c.fd, SHUT_WR);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
      c.reply.clear();
      ++active;
    }
    if (active == 0 && next == Clock::time_point::max()) break;
    // Sleeps until the next request is due or a reply comes, to the
    // nanosecond (epoll_pwait2): the generator does not spin, so the server
    // has a core of its own on a two-core machine.
    timespec timeout{0, 100'000'000};
    if (next != Clock::time_point::max()) {
      const auto wait = std::max(Clock::duration::zero(), next - Clock::now());
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
      timeout = {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    }
    const int n =
        epoll_pwait2(ep, events.data(), static_cast<int>(events.size()), &timeout, nullptr);
    for (int k = 0; k < n; ++k) {
      Client& c = clients[events[static_cast<std::size_t>(k)].data.u64];
      for (;;) {
        const ssize_t r = read(c.fd, buf, sizeof buf);
        if (r > 0) {
          c.reply.append(buf, static_cast<std::size_t>(r));
          continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        const auto done = Clock::now();
        if (r < 0) ++failures;
        if (!c.reply.empty()) ++nonempty;
        latencies_us.push_back(std::chrono::duration<double, std::micro>(done - c.due).count());
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        close(c.fd);
        c.fd = -1;
        --active;
        c.due = o.rate > 0 ? c.due + interval : done;
        break;
      }
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = o.server_pid ? CpuSeconds(o.server_pid) - cpu_before : 0;
  std::sort(latencies_us.begin(), latencies_us.end());
  auto q = [&](double p) {
    if (latencies_us.empty()) return 0.0;
    return latencies_us[std::min(latencies_us.size() - 1,
                                 static_cast<std::size_t>(p * latencies_us.size()))];
  };
  std::printf(
      "clients=%d rate=%.0f requests=%zu failures=%llu nonempty_replies=%llu achieved=%.0f/s "
      "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f",
      o.clients, o.rate, latencies_us.size(), static_cast<unsigned long long>(failures),
      static_cast<unsigned long long>(nonempty), latencies_us.size() / elapsed, q(0.50), q(0.99),
      q(0.999), latencies_us.empty() ? 0.0 : latencies_us.back());
  if (o.server_pid) {
    std::printf(" server_cpu_s=%.2f requests_per_cpu_s=%.0f", cpu,
                cpu > 0 ? latencies_us.size() / cpu : 0.0);
  }
  std::printf("\n");
  return failures == 0 ? 0 : 1;
}
