#include "net/http_post_transport.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <ctime>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "net/spawn.h"

namespace mailscope::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kRelaxed = std::memory_order_relaxed;

namespace {

// event-exporter-transport-http-post.c logs failures at most once per second.
constexpr auto kFailureLogInterval = std::chrono::seconds(1);
// Bodies kept for reuse by Send().
constexpr std::size_t kMaxSpare = 64;

// The Date header Dovecot's http-client sends (IMF-fixdate).
std::string HttpDate() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  return fmt::format("{}, {:02} {} {} {:02}:{:02}:{:02} GMT", kDays[tm.tm_wday], tm.tm_mday,
                     kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string ErrorText(const beast::error_code& ec) {
  return ec == beast::error::timeout ? std::string("Timed out") : ec.message();
}

// Shared with the coroutines serving it, so the transport can go while one
// is suspended. Loop thread only, except the counters.
struct HttpState {
  HttpState(asio::io_context& ctx, const exporter::ExporterSettings& s,
            const EventTransportOptions& o)
      : io(ctx),
        name(s.name),
        url(s.url),
        port(std::to_string(s.url.port)),
        content_type(s.mime_type()),
        timeout(s.transport_timeout),
        options(o),
        resolver(ctx),
        stream(ctx) {}

  asio::io_context& io;
  const std::string name;
  const exporter::HttpUrl url;
  const std::string port;
  const std::string content_type;
  const std::chrono::milliseconds timeout;
  const EventTransportOptions options;
  tcp::resolver resolver;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  bool connected = false;
  std::deque<std::string> queue;
  std::size_t queue_bytes = 0;
  std::vector<std::string> spare;
  std::size_t in_flight = 0;
  bool worker_active = false;
  bool closed = false;
  Clock::time_point last_log{};
  bool logged = false;
  std::uint64_t suppressed = 0;
  std::atomic<std::uint64_t> sent{0}, dropped{0}, failed{0};

  void Disconnect() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
    buffer.clear();
    connected = false;
  }

  // "Failed to export event via HTTP POST: <why>", at most once per second.
  void LogFailure(const std::string& why) {
    const auto now = Clock::now();
    if (logged && now - last_log < kFailureLogInterval) {
      ++suppressed;
      return;
    }
    if (suppressed == 0) {
      spdlog::warn("event_exporter {}: Failed to export event via HTTP POST: {}", name, why);
    } else {
      spdlog::warn(
          "event_exporter {}: Failed to export event via HTTP POST: {} ({} more errors "
          "suppressed)",
          name, why, suppressed);
    }
    logged = true;
    last_log = now;
    suppressed = 0;
  }
};

// One POST; `body` is lent to the request and given back. OK on a 2xx answer.
asio::awaitable<Status> Post(std::shared_ptr<HttpState> s, std::string& body) {
  for (int attempt = 0;; ++attempt) {
    const bool reused = s->connected;
    if (s->timeout.count() > 0) {
      s->stream.expires_after(s->timeout);  // for the whole request
    } else {
      s->stream.expires_never();
    }
    if (!s->connected) {
      auto [rec, results] = co_await s->resolver.async_resolve(s->url.host, s->port, kTuple);
      if (s->closed) co_return Unavailable("closed");
      if (rec) co_return Unavailable(fmt::format("resolve {}: {}", s->url.host, rec.message()));
      auto [cec, ep] = co_await s->stream.async_connect(results, kTuple);
      if (s->closed) co_return Unavailable("closed");
      if (cec) {
        s->Disconnect();
        co_return Unavailable(
            fmt::format("connect {}:{}: {}", s->url.host, s->port, ErrorText(cec)));
      }
      s->connected = true;
    }
    http::request<http::string_body> req{http::verb::post, s->url.target, 11};
    req.set(http::field::host, s->url.host_header);
    req.set(http::field::date, HttpDate());
    req.set(http::field::connection, "Keep-Alive");
    req.set(http::field::content_type, s->content_type);
    req.body().swap(body);
    req.prepare_payload();
    auto [wec, written] = co_await http::async_write(s->stream, req, kTuple);
    req.body().swap(body);
    beast::error_code ec = wec;
    bool answered = false;  // some of a response arrived
    if (!ec) {
      http::response_parser<http::string_body> parser;
      parser.body_limit(s->options.max_response_bytes);
      auto [rec, read] = co_await http::async_read(s->stream, s->buffer, parser, kTuple);
      if (!rec) {
        const auto& res = parser.get();
        if (!res.keep_alive()) s->Disconnect();
        const unsigned code = res.result_int();
        if (code >= 200 && code < 300) co_return Status::Ok();
        co_return Unavailable(fmt::format("{} {}", code, std::string_view(res.reason())));
      }
      ec = rec;
      answered = parser.got_some();
    }
    s->Disconnect();
    if (s->closed) co_return Unavailable("closed");
    // A kept-alive connection the server closed while idle fails at once,
    // before any answer: that request gets one more try on a new connection.
    const bool closed_by_peer = ec == http::error::end_of_stream || ec == asio::error::eof ||
                                ec == asio::error::connection_reset ||
                                ec == asio::error::broken_pipe;
    if (reused && attempt == 0 && !answered && closed_by_peer) continue;
    co_return Unavailable(fmt::format("{} {}{}: {}", wec ? "write to" : "read from",
                                      s->url.host_header, s->url.target, ErrorText(ec)));
  }
}

// REQUIRES: s->worker_active was set by the caller.
asio::awaitable<void> Worker(std::shared_ptr<HttpState> s) {
  std::string body;
  while (!s->closed && !s->queue.empty()) {
    body = std::move(s->queue.front());
    s->queue.pop_front();
    s->queue_bytes -= body.size();
    s->in_flight = 1;
    Status st = co_await Post(s, body);
    s->in_flight = 0;
    if (s->closed) {
      s->dropped.fetch_add(1, kRelaxed);
      break;
    }
    if (st.ok()) {
      s->sent.fetch_add(1, kRelaxed);
    } else {
      s->failed.fetch_add(1, kRelaxed);
      s->LogFailure(st.message());
    }
    body.clear();
    if (s->spare.size() < kMaxSpare) s->spare.push_back(std::move(body));
    body = std::string();
  }
  s->worker_active = false;
}

class HttpPostTransport final : public EventTransport {
 public:
  HttpPostTransport(asio::io_context& io, const exporter::ExporterSettings& settings,
                    const EventTransportOptions& options)
      : EventTransport(settings.name, settings.transport),
        s_(std::make_shared<HttpState>(io, settings, options)) {}
  ~HttpPostTransport() override { Close(); }

  void Send(std::string_view payload) override {
    HttpState& s = *s_;
    if (s.closed || s.queue.size() >= s.options.max_queue_events ||
        s.queue_bytes + payload.size() > s.options.max_queue_bytes) {
      s.dropped.fetch_add(1, kRelaxed);
      return;
    }
    std::string body;
    if (!s.spare.empty()) {
      body = std::move(s.spare.back());
      s.spare.pop_back();
    }
    body.assign(payload);
    s.queue_bytes += body.size();
    s.queue.push_back(std::move(body));
    if (!s.worker_active) {
      s.worker_active = true;
      // After a fault the connection's state is unknown: the next worker
      // starts from a new one.
      Spawn(s.io, "event_exporter " + s.name, Worker(s_), [s = s_](std::exception_ptr e) {
        if (!e) return;
        s->worker_active = false;
        s->in_flight = 0;
        if (!s->closed) s->Disconnect();
      });
    }
  }

  void Close() override {
    HttpState& s = *s_;
    if (s.closed) return;
    s.closed = true;
    s.resolver.cancel();
    s.Disconnect();
    s.dropped.fetch_add(s.queue.size(), kRelaxed);
    s.queue.clear();
    s.queue_bytes = 0;
  }

  TransportCounters counters() const override {
    return {s_->sent.load(kRelaxed), s_->dropped.load(kRelaxed), s_->failed.load(kRelaxed)};
  }
  std::size_t queued() const override { return s_->queue.size() + s_->in_flight; }

 private:
  std::shared_ptr<HttpState> s_;
};

}  // namespace

std::unique_ptr<EventTransport> MakeHttpPostTransport(asio::io_context& io,
                                                      const exporter::ExporterSettings& settings,
                                                      const EventTransportOptions& options) {
  return std::make_unique<HttpPostTransport>(io, settings, options);
}

}  // namespace mailscope::net
