// null_endpoint: the least a readsocket endpoint can do, to measure the
// machine's floor under the same load as mailscope's exim-events socket.
// One thread, one epoll loop, non-blocking sockets: accept, read until the
// client half-closes (or sends a newline), close without a reply. No parsing,
// no dispatch, no allocation per request beyond the kernel's. Standalone (C++
// standard library and POSIX).
//
//   null_endpoint --socket PATH
//
// Runs until SIGTERM or SIGINT; prints the number of requests served on exit.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

volatile sig_atomic_t g_stop = 0;

void OnSignal(int) { g_stop = 1; }

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "null_endpoint: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
      path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: null_endpoint --socket PATH\n");
      return 2;
    }
  }
  if (path.empty() || path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    std::fprintf(stderr, "usage: null_endpoint --socket PATH (under 108 bytes)\n");
    return 2;
  }

  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  const int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) Die("socket");
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  unlink(path.c_str());
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) Die("bind");
  chmod(path.c_str(), 0660);
  if (listen(listener, 4096) != 0) Die("listen");

  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) Die("epoll_create1");
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.fd = listener;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev) != 0) Die("epoll_ctl");

  unsigned long long served = 0;
  char buf[65536];
  epoll_event events[256];
  while (g_stop == 0) {
    const int n = epoll_wait(ep, events, 256, 200);
    if (n < 0 && errno != EINTR) Die("epoll_wait");
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener) {
        for (;;) {
          const int c = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          epoll_event cev = {};
          cev.events = EPOLLIN | EPOLLRDHUP;
          cev.data.fd = c;
          if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) != 0) close(c);
        }
        continue;
      }
      bool done = false;
      for (;;) {
        const ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
          if (std::memchr(buf, '\n', static_cast<size_t>(r)) != nullptr) done = true;
          continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) done = true;
        if (r < 0 && errno == EINTR) continue;
        break;
      }
      if (done) {
        close(fd);  // also leaves the epoll set
        ++served;
      }
    }
  }
  unlink(path.c_str());
  std::printf("%llu\n", served);
  return 0;
}
