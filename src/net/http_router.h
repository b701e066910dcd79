// Requests, responses and the route table of the HTTP listener. The router
// maps (method, path) to a handler and carries each route's limits, so the
// server can refuse a body before reading it. Pure logic: no sockets, no Beast.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailscope::net {

// The body limit of a route that does not set its own.
inline constexpr std::size_t kDefaultMaxBodyBytes = std::size_t{1} << 20;

struct HttpHeader {
  std::string name;
  std::string value;
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Sent as given, after the server's own fields (e.g. Allow, WWW-Authenticate).
  // Must not repeat Content-Type, Content-Length or Connection.
  std::vector<HttpHeader> headers;
};

// Where HttpRequest::header() looks: the server's parsed message, or a fake in
// handler tests.
class HttpHeaderSource {
 public:
  virtual ~HttpHeaderSource() = default;
  // The value of the first field named `name` (ASCII case-insensitive), or ""
  // when absent.
  virtual std::string_view Find(std::string_view name) const = 0;
};

// One request as a handler sees it. Every view points into the server's
// message and is valid only during the handler call.
struct HttpRequest {
  std::string_view method;  // as sent, case-sensitive: "GET", "POST"
  std::string_view target;  // as sent: path and query
  std::string_view path;    // target without the query, not percent-decoded
  std::string_view query;   // after the first '?', without it; "" when none
  // For a prefix route, the path after the prefix ("exim" for /ingest/exim
  // under /ingest/); "" for an exact route.
  std::string_view subpath;
  std::string_view accept;        // the Accept header, "" when absent
  std::string_view content_type;  // the Content-Type header, "" when absent
  std::string_view body;
  // Bytes readable from body.data(): at least body.size(), more when the
  // route asked for padding (HttpRouteOptions::body_padding) and got it.
  std::size_t body_capacity = 0;
  const HttpHeaderSource* headers = nullptr;
  bool api = false;  // the route answers errors as JSON
  // The route's check_headers passed before the body was read.
  bool headers_checked = false;

  // The first header named `name`, case-insensitively; "" when absent.
  std::string_view header(std::string_view name) const {
    return headers != nullptr ? headers->Find(name) : std::string_view();
  }
  // An error response in the route's format (see HttpError).
  HttpResponse Error(unsigned status, std::string_view message) const;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// {"error":"<message>","status":N} as application/json when `json`, else the
// message and a newline as text/plain.
HttpResponse HttpError(unsigned status, std::string_view message, bool json);

struct HttpRouteOptions {
  // Larger bodies get 413 from Content-Length, before any of the body is read
  // (chunked bodies as soon as they pass it), and the connection closes.
  std::size_t max_body_bytes = kDefaultMaxBodyBytes;
  // Errors (405, 413, 415 and the handler's own through HttpRequest::Error)
  // as JSON bodies instead of text.
  bool api = false;
  // When not empty, the media types accepted (compared without parameters,
  // case-insensitively); others get 415 before the body is read.
  std::vector<std::string> content_types;
  // Bytes the body buffer should hold past the body, so that a parser that
  // reads ahead (simdjson) can take it in place; see body_capacity.
  std::size_t body_padding = 0;
  // Called with each refusal the server answers for this route without its
  // handler (413, 415), so the route can count them with its own.
  std::function<void(const HttpResponse&)> on_refused;
  // When set, called with the request before its body is read (body empty):
  // a response refuses the request there (credentials missing), and the
  // connection closes as after a 413; nullopt lets the body be read.
  std::function<std::optional<HttpResponse>(const HttpRequest&)> check_headers;
};

// The route table: exact paths and path prefixes, each with its methods, its
// handler and its options. Filled before HttpServer::Listen, read-only after;
// thread-compatible.
class HttpRouter {
 public:
  struct Route {
    std::vector<std::string> methods;  // empty: every method
    std::string path;                  // the exact path, or the prefix
    bool prefix = false;
    HttpHandler handler;
    HttpRouteOptions options;

    // Whether `method` is served here (HEAD where GET is).
    bool Allows(std::string_view method) const;
    // Whether a body of this Content-Type is taken (see content_types).
    bool AcceptsContentType(std::string_view content_type) const;
  };

  // Serves `methods` on exactly `path`. A route with GET also answers HEAD
  // (the server sends no body); an empty `methods` takes every method.
  // REQUIRES: `path` starts with '/'; no route on the same path shares a method.
  void Add(std::vector<std::string> methods, std::string path, HttpHandler handler,
           HttpRouteOptions options = {});
  // Serves every path that starts with `prefix`; the handler gets the rest as
  // HttpRequest::subpath (possibly ""). An exact route wins over a prefix, and
  // a longer prefix over a shorter one.
  // REQUIRES: as Add, and `prefix` ends with '/'.
  void AddPrefix(std::vector<std::string> methods, std::string prefix, HttpHandler handler,
                 HttpRouteOptions options = {});

  struct Match {
    const Route* route = nullptr;  // null: answer `error` instead
    std::string_view subpath;      // a view into the path given to Find
    HttpResponse error;            // 404, or 405 with Allow
  };
  // Resolves a request from its method and path (without the query). The path
  // picks the routes (exact, then the longest prefix); the method picks one of
  // them, else 405 listing the methods they allow.
  Match Find(std::string_view method, std::string_view path) const;

 private:
  void Insert(Route route);
  std::vector<Route> routes_;  // a handful: a scan is cheaper than hashing
};

// The path of a request target ("/a/b" of "/a/b?x=1", or of the absolute form
// "http://host/a/b?x=1"), and its query.
std::string_view TargetPath(std::string_view target);
std::string_view TargetQuery(std::string_view target);

}  // namespace mailscope::net
