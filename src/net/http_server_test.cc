#include "net/http_server.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "net/http_router.h"

namespace mailscope::net {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;
using std::chrono::milliseconds;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr milliseconds kDeadline{10000};

using Response = http::response<http::string_body>;

// One write on the connection, then one response read.
struct Step {
  std::string wire;
  bool head = false;  // the response has no body whatever its Content-Length
};

struct Reply {
  std::vector<Response> responses;
  bool closed = false;  // the server closed the connection after the last one
  bool done = false;
  std::string error;
};

asio::awaitable<void> Client(tcp::endpoint server, std::vector<Step> steps, bool read_to_close,
                             std::shared_ptr<Reply> reply) {
  Reply& out = *reply;
  tcp::socket sock(co_await asio::this_coro::executor);
  boost::beast::flat_buffer buffer;
  if (auto [ec] = co_await sock.async_connect(server, kTuple); ec) {
    out.error = "connect: " + ec.message();
    out.done = true;
    co_return;
  }
  for (const auto& step : steps) {
    auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(step.wire), kTuple);
    if (wec) {
      out.error = "write: " + wec.message();
      break;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    parser.skip(step.head);
    auto [rec, rn] = co_await http::async_read(sock, buffer, parser, kTuple);
    if (rec) {
      out.error = "read: " + rec.message();
      break;
    }
    out.responses.push_back(parser.release());
  }
  if (out.error.empty() && read_to_close) {
    char byte;
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(&byte, 1), kTuple);
    out.closed = ec == asio::error::eof || ec == asio::error::connection_reset;
  }
  out.done = true;
}

std::string Get(std::string_view target, std::string_view extra = "") {
  return fmt::format("GET {} HTTP/1.1\r\nHost: t\r\n{}\r\n", target, extra);
}

std::string Send(std::string_view method, std::string_view target, std::string_view body,
                 std::string_view extra = "") {
  return fmt::format("{} {} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n{}\r\n{}", method, target,
                     body.size(), extra, body);
}

// Answers with what the handler saw, so tests check it from the response.
HttpResponse Echo(const HttpRequest& r) {
  return {200,
          "text/plain",
          fmt::format("{} {} path={} query={} subpath={} body={}", r.method, r.target, r.path,
                      r.query, r.subpath, r.body.size()),
          {}};
}

HttpHandler Named(std::string name) {
  return [name](const HttpRequest& r) {
    return HttpResponse{200, "text/plain", name + " " + std::string(r.subpath), {}};
  };
}

HttpRouteOptions ApiOptions() {
  HttpRouteOptions o;
  o.api = true;
  return o;
}

HttpRouteOptions LargeBodies() {
  HttpRouteOptions o;
  o.max_body_bytes = std::size_t{64} << 20;
  return o;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpRouter router) { Use(HttpServer::Listen(io_, "127.0.0.1:0", std::move(router))); }

  void Use(Result<std::unique_ptr<HttpServer>> s) {
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    const std::string addr = server_->local_address();
    endpoint_ =
        tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                      static_cast<unsigned short>(std::stoi(addr.substr(addr.rfind(':') + 1))));
  }

  // Runs `steps` on one connection; with `read_to_close`, waits for the
  // server to close it afterwards.
  Reply Exchange(std::vector<Step> steps, bool read_to_close = false) {
    // Shared with the client, which may outlive a missed deadline.
    auto shared = std::make_shared<Reply>();
    const Reply& reply = *shared;
    asio::co_spawn(io_, Client(endpoint_, std::move(steps), read_to_close, shared), asio::detached);
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (!reply.done && std::chrono::steady_clock::now() < deadline) {
      io_.run_one_for(milliseconds(10));
    }
    EXPECT_TRUE(reply.done) << "no answer before the deadline";
    EXPECT_EQ(reply.error, "");
    return reply;
  }

  Response One(std::string wire, bool head = false) {
    Reply r = Exchange({{std::move(wire), head}});
    return r.responses.empty() ? Response() : r.responses.front();
  }

  void TearDown() override {
    if (server_) server_->Close();
    io_.poll();
  }

  asio::io_context io_;
  std::unique_ptr<HttpServer> server_;
  tcp::endpoint endpoint_;
};

std::string Field(const Response& r, http::field f) { return std::string(r[f]); }

TEST_F(HttpServerTest, RoutesByMethodAndPath) {
  HttpRouter router;
  router.Add({"GET"}, "/a", Named("get-a"));
  router.Add({"POST", "PUT"}, "/a", Named("write-a"));
  router.Add({"GET"}, "/b", Echo);
  Start(std::move(router));
  EXPECT_EQ(One(Get("/a")).body(), "get-a ");
  EXPECT_EQ(One(Send("POST", "/a", "x")).body(), "write-a ");
  EXPECT_EQ(One(Send("PUT", "/a", "")).body(), "write-a ");
  EXPECT_EQ(One(Get("/b?x=1&y")).body(), "GET /b?x=1&y path=/b query=x=1&y subpath= body=0");
  EXPECT_EQ(One(Get("http://t/b?q")).body(), "GET http://t/b?q path=/b query=q subpath= body=0");
}

TEST_F(HttpServerTest, PrefixRouteGivesTheHandlerTheRestOfThePath) {
  HttpRouter router;
  router.AddPrefix({"POST"}, "/ingest/", Named("prefix"));
  router.AddPrefix({"POST"}, "/ingest/special/", Named("longer"));
  router.Add({"POST"}, "/ingest/exim", Named("exact"));
  Start(std::move(router));
  EXPECT_EQ(One(Send("POST", "/ingest/stalwart?sig=1", "{}")).body(), "prefix stalwart");
  EXPECT_EQ(One(Send("POST", "/ingest/a/b", "")).body(), "prefix a/b");
  EXPECT_EQ(One(Send("POST", "/ingest/", "")).body(), "prefix ");
  EXPECT_EQ(One(Send("POST", "/ingest/exim", "")).body(), "exact ");
  EXPECT_EQ(One(Send("POST", "/ingest/special/x", "")).body(), "longer x");
  EXPECT_EQ(One(Send("POST", "/ingest", "")).result_int(), 404);
}

TEST_F(HttpServerTest, ThrowingHandlerAnswers500AndServingGoesOn) {
  HttpRouter router;
  router.Add({"GET"}, "/boom",
             [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("injected"); });
  router.Add({"GET"}, "/a", Named("a"));
  Start(std::move(router));
  Reply reply = Exchange({{Get("/boom")}}, /*read_to_close=*/true);
  ASSERT_EQ(reply.responses.size(), 1u);
  EXPECT_EQ(reply.responses.front().result_int(), 500);
  EXPECT_EQ(One(Get("/a")).body(), "a ");
}

TEST_F(HttpServerTest, UnknownPathIs404AsText) {
  HttpRouter router;
  router.Add({"GET"}, "/metrics", Echo, ApiOptions());
  Start(std::move(router));
  Response r = One(Get("/nope"));
  EXPECT_EQ(r.result_int(), 404);
  EXPECT_EQ(Field(r, http::field::content_type), "text/plain; charset=utf-8");
  EXPECT_EQ(r.body(), "not found\n");
  EXPECT_EQ(One(Get("/metrics/")).result_int(), 404);
}

TEST_F(HttpServerTest, WrongMethodIs405ListingTheAllowedOnes) {
  HttpRouter router;
  router.Add({"GET"}, "/metrics", Echo);
  router.Add({"DELETE"}, "/metrics", Echo);
  router.Add({"POST"}, "/events", Echo);
  Start(std::move(router));
  Response r = One(Send("POST", "/metrics", ""));
  EXPECT_EQ(r.result_int(), 405);
  EXPECT_EQ(Field(r, http::field::allow), "GET, HEAD, DELETE");
  EXPECT_EQ(r.body(), "method not allowed\n");
  r = One(Get("/events"));
  EXPECT_EQ(r.result_int(), 405);
  EXPECT_EQ(Field(r, http::field::allow), "POST");
  EXPECT_EQ(One("HEAD /events HTTP/1.1\r\nHost: t\r\n\r\n", true).result_int(), 405);
}

TEST_F(HttpServerTest, HeadIsGetWithoutTheBody) {
  HttpRouter router;
  router.Add({"GET"}, "/page", [](const HttpRequest& r) {
    return HttpResponse{200, "text/html", "<p>" + std::string(r.method) + "</p>", {}};
  });
  Start(std::move(router));
  Reply reply = Exchange({{"HEAD /page HTTP/1.1\r\nHost: t\r\n\r\n", true}, {Get("/page")}});
  ASSERT_EQ(reply.responses.size(), 2u);
  EXPECT_EQ(reply.responses[0].result_int(), 200);
  EXPECT_EQ(Field(reply.responses[0], http::field::content_length), "11");
  EXPECT_EQ(reply.responses[0].body(), "");
  // No stray body bytes on the wire: the next response parses cleanly.
  EXPECT_EQ(reply.responses[1].body(), "<p>GET</p>");
}

TEST_F(HttpServerTest, EachRouteHasItsOwnBodyLimit) {
  HttpRouter router;
  router.Add({"POST"}, "/big", Echo, LargeBodies());
  router.Add({"POST"}, "/small", Echo);
  Start(std::move(router));
  const std::string two_mib(2u << 20, 'x');
  Response r = One(Send("POST", "/big", two_mib));
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), "POST /big path=/big query= subpath= body=2097152");

  // Only the header goes out: the 413 comes from Content-Length, without
  // waiting for a body, and the connection closes.
  Reply refused = Exchange({{"POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 2097152\r\n\r\n" +
                             two_mib.substr(0, 10)}},
                           true);
  ASSERT_EQ(refused.responses.size(), 1u);
  EXPECT_EQ(refused.responses[0].result_int(), 413);
  EXPECT_EQ(refused.responses[0].body(), "request body larger than 1048576 bytes\n");
  EXPECT_FALSE(refused.responses[0].keep_alive());
  EXPECT_TRUE(refused.closed);

  // A chunked body is refused at the first chunk that passes the limit.
  refused = Exchange(
      {{"POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\nxyz"}},
      true);
  ASSERT_EQ(refused.responses.size(), 1u);
  EXPECT_EQ(refused.responses[0].result_int(), 413);
  EXPECT_TRUE(refused.closed);

  // A body at the limit is fine.
  EXPECT_EQ(One(Send("POST", "/small", std::string(1u << 20, 'y'))).result_int(), 200);
}

TEST_F(HttpServerTest, ExpectContinueGetsAnInterimResponseBeforeTheBody) {
  HttpRouter router;
  router.Add({"POST"}, "/big", Echo, LargeBodies());
  Start(std::move(router));
  Reply reply = Exchange({{"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                           "Expect: 100-continue\r\n\r\n"},
                          {"hello"}});
  ASSERT_EQ(reply.responses.size(), 2u);
  EXPECT_EQ(reply.responses[0].result_int(), 100);
  EXPECT_EQ(reply.responses[1].result_int(), 200);
  EXPECT_EQ(reply.responses[1].body(), "POST /big path=/big query= subpath= body=5");
}

TEST_F(HttpServerTest, CheckHeadersRefusesBeforeTheBodyIsRead) {
  HttpRouter router;
  HttpRouteOptions options = LargeBodies();
  int handled = 0;
  options.check_headers = [](const HttpRequest& r) -> std::optional<HttpResponse> {
    EXPECT_TRUE(r.body.empty());
    if (r.header("Authorization") == "Bearer ok") return std::nullopt;
    return r.Error(401, "no");
  };
  options.body_padding = 64;
  router.Add(
      {"POST"}, "/hook",
      [&](const HttpRequest& r) {
        ++handled;
        EXPECT_TRUE(r.headers_checked);
        return HttpResponse{
            200, "text/plain", fmt::format("padded={}", r.body_capacity >= r.body.size() + 64), {}};
      },
      options);
  Start(std::move(router));
  // Refused from the header alone: no 100 Continue, no body read, closed.
  Reply refused = Exchange({{"POST /hook HTTP/1.1\r\nHost: t\r\nContent-Length: 2097152\r\n"
                             "Expect: 100-continue\r\n\r\n"}},
                           true);
  ASSERT_EQ(refused.responses.size(), 1u);
  EXPECT_EQ(refused.responses[0].result_int(), 401);
  EXPECT_TRUE(refused.closed);
  EXPECT_EQ(handled, 0);
  Reply taken =
      Exchange({{"POST /hook HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ok\r\n"
                 "Content-Length: 5\r\n\r\nhello"}});
  ASSERT_EQ(taken.responses.size(), 1u);
  EXPECT_EQ(taken.responses[0].result_int(), 200);
  EXPECT_EQ(taken.responses[0].body(), "padded=true");
  EXPECT_EQ(handled, 1);
}

TEST_F(HttpServerTest, HeaderLookupIgnoresCase) {
  HttpRouter router;
  router.Add({"POST"}, "/hook", [](const HttpRequest& r) {
    return HttpResponse{200,
                        "text/plain",
                        fmt::format("sig={} auth={} ct={} accept={} missing=[{}]",
                                    r.header("X-Signature"), r.header("AUTHORIZATION"),
                                    r.header("content-type"), r.accept, r.header("X-Missing")),
                        {}};
  });
  Start(std::move(router));
  Response r = One(Send("POST", "/hook", "{}",
                        "x-SIGNATURE: abc\r\nauthorization: Bearer t0k\r\n"
                        "CONTENT-TYPE: application/json\r\nAccept: text/plain\r\n"));
  EXPECT_EQ(r.body(), "sig=abc auth=Bearer t0k ct=application/json accept=text/plain missing=[]");
}

TEST_F(HttpServerTest, ApiRoutesAnswerErrorsAsJson) {
  HttpRouter router;
  HttpRouteOptions api = ApiOptions();
  api.content_types = {"application/json"};
  router.Add(
      {"POST"}, "/api/events",
      [](const HttpRequest& r) {
        if (r.body == "bad") return r.Error(400, "bad \"event\"");
        return HttpResponse{204, "text/plain", {}, {}};
      },
      api);
  router.Add({"POST"}, "/text", [](const HttpRequest& r) { return r.Error(400, "bad"); });
  Start(std::move(router));
  auto json = [](const Response& r) { return Field(r, http::field::content_type); };

  Response r = One(Send("POST", "/api/events", "bad", "Content-Type: application/json\r\n"));
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_EQ(json(r), "application/json");
  EXPECT_EQ(r.body(), R"({"error":"bad \"event\"","status":400})");

  r = One(Send("POST", "/api/events", "{}", "Content-Type: Application/JSON; charset=utf-8\r\n"));
  EXPECT_EQ(r.result_int(), 204);

  r = One(Send("POST", "/api/events", "a=1", "Content-Type: text/plain\r\n"));
  EXPECT_EQ(r.result_int(), 415);
  EXPECT_EQ(r.body(), R"({"error":"unsupported content type","status":415})");

  r = One(Get("/api/events"));
  EXPECT_EQ(r.result_int(), 405);
  EXPECT_EQ(json(r), "application/json");
  EXPECT_EQ(Field(r, http::field::allow), "POST");
  EXPECT_EQ(r.body(), R"({"error":"method not allowed","status":405})");

  r =
      One("POST /api/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
          "Content-Length: 9999999\r\n\r\n");
  EXPECT_EQ(r.result_int(), 413);
  EXPECT_EQ(r.body(), R"({"error":"request body larger than 1048576 bytes","status":413})");

  r = One(Send("POST", "/text", "x"));
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_EQ(json(r), "text/plain; charset=utf-8");
  EXPECT_EQ(r.body(), "bad\n");
}

TEST_F(HttpServerTest, HandlerHeadersAreSent) {
  HttpRouter router;
  router.Add({"GET"}, "/private", [](const HttpRequest&) {
    return HttpResponse{401, "text/plain", "no\n", {{"WWW-Authenticate", "Bearer"}}};
  });
  Start(std::move(router));
  Response r = One(Get("/private"));
  EXPECT_EQ(r.result_int(), 401);
  EXPECT_EQ(Field(r, http::field::www_authenticate), "Bearer");
}

TEST_F(HttpServerTest, NoContentDropsAStrayBody) {
  HttpRouter router;
  router.Add({"POST"}, "/x", [](const HttpRequest&) {
    return HttpResponse{204, "text/plain", "ignored", {}};
  });
  Start(std::move(router));
  Reply reply = Exchange({{Send("POST", "/x", "a")}, {Send("POST", "/x", "b")}});
  ASSERT_EQ(reply.responses.size(), 2u);
  EXPECT_EQ(reply.responses[0].result_int(), 204);
  EXPECT_EQ(reply.responses[1].result_int(), 204);
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  HttpRouter router;
  router.Add({"GET", "POST"}, "/x", Echo);
  Start(std::move(router));
  Reply reply = Exchange({{Get("/x?1")},
                          {Send("POST", "/x", "abc")},
                          {Get("/missing")},
                          {Send("POST", "/x", "", "Connection: close\r\n")}},
                         true);
  ASSERT_EQ(reply.responses.size(), 4u);
  EXPECT_EQ(reply.responses[0].body(), "GET /x?1 path=/x query=1 subpath= body=0");
  EXPECT_TRUE(reply.responses[0].keep_alive());
  EXPECT_EQ(reply.responses[1].body(), "POST /x path=/x query= subpath= body=3");
  EXPECT_EQ(reply.responses[2].result_int(), 404);
  EXPECT_TRUE(reply.responses[2].keep_alive());
  EXPECT_FALSE(reply.responses[3].keep_alive());
  EXPECT_TRUE(reply.closed);
}

TEST_F(HttpServerTest, RefusingAnUnreadBodyClosesTheConnection) {
  HttpRouter router;
  router.Add({"GET"}, "/x", Echo);
  Start(std::move(router));
  Reply reply = Exchange({{Send("POST", "/nowhere", "body")}}, true);
  ASSERT_EQ(reply.responses.size(), 1u);
  EXPECT_EQ(reply.responses[0].result_int(), 404);
  EXPECT_TRUE(reply.closed);
}

TEST_F(HttpServerTest, OneHandlerServesEveryPathAndMethod) {
  Use(HttpServer::Listen(io_, "127.0.0.1:0", HttpHandler(Echo)));
  EXPECT_EQ(One(Send("PATCH", "/any/where?z", "ab")).body(),
            "PATCH /any/where?z path=/any/where query=z subpath=any/where body=2");
}

// Runs the loop until `done` holds or 10 seconds pass.
template <typename Pred>
bool RunUntil(asio::io_context& io, Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!done() && std::chrono::steady_clock::now() < deadline) io.run_one_for(milliseconds(10));
  return done();
}

TEST_F(HttpServerTest, ClientLimitRefusesWithA503) {
  LineServerLimits limits;
  limits.client_limit = 2;
  Use(HttpServer::Listen(io_, "127.0.0.1:0", HttpHandler(Echo), limits));
  tcp::socket a(io_), b(io_), c(io_);
  a.connect(endpoint_);
  b.connect(endpoint_);
  ASSERT_TRUE(RunUntil(io_, [&] { return server_->figures().connections == 2; }));
  c.connect(endpoint_);
  ASSERT_TRUE(RunUntil(io_, [&] { return server_->figures().refused == 1; }));
  // The answer was written before the close: read it to EOF.
  std::string got;
  char chunk[512];
  boost::system::error_code ec;
  for (std::size_t n; (n = c.read_some(asio::buffer(chunk), ec)) > 0 || !ec;) got.append(chunk, n);
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_EQ(got.substr(0, got.find("\r\n")), "HTTP/1.1 503 Service Unavailable");
  EXPECT_NE(got.find("\r\n\r\ntoo many open HTTP connections"), std::string::npos) << got;
  EXPECT_EQ(server_->figures().connections, 2u);
  // A closed connection makes room.
  a.close();
  ASSERT_TRUE(RunUntil(io_, [&] { return server_->figures().connections == 1; }));
  EXPECT_EQ(One(Get("/after")).result_int(), 200);
}

TEST_F(HttpServerTest, LineTimeoutClosesAnUnfinishedRequestAndCountsIt) {
  LineServerLimits limits;
  limits.line_timeout = milliseconds(100);
  Use(HttpServer::Listen(io_, "127.0.0.1:0", HttpHandler(Echo), limits));
  tcp::socket partial(io_), idle(io_);
  partial.connect(endpoint_);
  idle.connect(endpoint_);
  asio::write(partial, asio::buffer(std::string_view("GET /slow HTTP/1.1\r\nHo")));
  ASSERT_TRUE(RunUntil(io_, [&] { return server_->figures().connections == 2; }));
  ASSERT_TRUE(RunUntil(io_, [&] { return server_->figures().connections == 0; }));
  // Only the connection inside a request counts; an idle one just closes.
  EXPECT_EQ(server_->figures().closed_line_timeout, 1u);
  char byte;
  boost::system::error_code ec;
  partial.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
}

TEST_F(HttpServerTest, WriteTimeoutClosesAClientThatDoesNotRead) {
  LineServerLimits limits;
  limits.write_timeout = milliseconds(200);
  HttpRouter router;
  router.Add({"GET"}, "/huge", [](const HttpRequest&) {
    return HttpResponse{200, "text/plain", std::string(std::size_t{64} << 20, 'x'), {}};
  });
  Use(HttpServer::Listen(io_, "127.0.0.1:0", std::move(router), limits));
  tcp::socket stuck(io_);
  stuck.connect(endpoint_);
  asio::write(stuck, asio::buffer(Get("/huge")));
  ASSERT_TRUE(RunUntil(io_, [&] { return server_->figures().connections == 1; }));
  ASSERT_TRUE(RunUntil(io_, [&] { return server_->figures().connections == 0; }));
  EXPECT_EQ(server_->figures().closed_write_timeout, 1u);
  EXPECT_EQ(server_->figures().closed_line_timeout, 0u);
}

TEST(HttpRouterTest, FindsWithoutAServer) {
  HttpRouter router;
  router.Add({"GET"}, "/a", Echo);
  router.AddPrefix({}, "/p/", Echo);
  EXPECT_NE(router.Find("HEAD", "/a").route, nullptr);
  EXPECT_EQ(router.Find("GET", "/b").error.status, 404u);
  auto m = router.Find("PROPFIND", "/p/x/y");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.subpath, "x/y");
}

TEST(HttpRouterTest, TargetSplitsIntoPathAndQuery) {
  EXPECT_EQ(TargetPath("/a/b?c=d?e"), "/a/b");
  EXPECT_EQ(TargetQuery("/a/b?c=d?e"), "c=d?e");
  EXPECT_EQ(TargetQuery("/a"), "");
  EXPECT_EQ(TargetPath("https://h:1"), "/");
  EXPECT_EQ(TargetPath("*"), "*");
}

}  // namespace
}  // namespace mailscope::net
