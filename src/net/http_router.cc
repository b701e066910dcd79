#include "net/http_router.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <utility>

#include "core/check.h"
#include "export/json_writer.h"

namespace mailscope::net {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    return lower(x) == lower(y);
  });
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool SharesMethod(const HttpRouter::Route& a, const HttpRouter::Route& b) {
  if (a.methods.empty() || b.methods.empty()) return true;
  for (const auto& m : a.methods) {
    if (std::find(b.methods.begin(), b.methods.end(), m) != b.methods.end()) return true;
  }
  return false;
}

}  // namespace

HttpResponse HttpError(unsigned status, std::string_view message, bool json) {
  HttpResponse r;
  r.status = status;
  if (json) {
    r.content_type = "application/json";
    r.body = "{\"error\":";
    exporter::AppendJsonString(r.body, message);
    r.body += fmt::format(",\"status\":{}}}", status);
  } else {
    r.body.reserve(message.size() + 1);
    r.body.append(message);
    r.body += '\n';
  }
  return r;
}

HttpResponse HttpRequest::Error(unsigned status, std::string_view message) const {
  return HttpError(status, message, api);
}

bool HttpRouter::Route::Allows(std::string_view method) const {
  if (methods.empty()) return true;
  for (const auto& m : methods) {
    // HEAD is GET without the body (RFC 9110 9.3.2).
    if (m == method || (m == "GET" && method == "HEAD")) return true;
  }
  return false;
}

bool HttpRouter::Route::AcceptsContentType(std::string_view content_type) const {
  if (options.content_types.empty()) return true;
  const std::string_view media = TrimSpaces(content_type.substr(0, content_type.find(';')));
  return std::any_of(options.content_types.begin(), options.content_types.end(),
                     [&](const std::string& t) { return EqualsIgnoreCase(t, media); });
}

void HttpRouter::Add(std::vector<std::string> methods, std::string path, HttpHandler handler,
                     HttpRouteOptions options) {
  Insert({std::move(methods), std::move(path), false, std::move(handler), std::move(options)});
}

void HttpRouter::AddPrefix(std::vector<std::string> methods, std::string prefix,
                           HttpHandler handler, HttpRouteOptions options) {
  MS_CHECK(!prefix.empty() && prefix.back() == '/');
  Insert({std::move(methods), std::move(prefix), true, std::move(handler), std::move(options)});
}

void HttpRouter::Insert(Route route) {
  MS_CHECK(!route.path.empty() && route.path.front() == '/');
  MS_CHECK(route.handler != nullptr);
  for (const auto& r : routes_) {
    MS_CHECK(r.prefix != route.prefix || r.path != route.path || !SharesMethod(r, route));
  }
  routes_.push_back(std::move(route));
}

HttpRouter::Match HttpRouter::Find(std::string_view method, std::string_view path) const {
  // The routes on the most specific matching path: the exact one, else the
  // longest prefix.
  bool exact = false;
  std::size_t prefix_len = 0;
  for (const auto& r : routes_) {
    if (!r.prefix && r.path == path) exact = true;
    if (r.prefix && path.starts_with(r.path)) prefix_len = std::max(prefix_len, r.path.size());
  }
  auto on_path = [&](const Route& r) {
    return exact ? !r.prefix && r.path == path
                 : r.prefix && r.path.size() == prefix_len && path.starts_with(r.path);
  };
  Match m;
  if (!exact && prefix_len == 0) {
    m.error = HttpError(404, "not found", false);
    return m;
  }
  const Route* first = nullptr;
  std::vector<std::string_view> verbs;
  auto add_verb = [&](std::string_view v) {
    if (std::find(verbs.begin(), verbs.end(), v) == verbs.end()) verbs.push_back(v);
  };
  for (const auto& r : routes_) {
    if (!on_path(r)) continue;
    if (r.Allows(method)) {
      m.route = &r;
      if (r.prefix) m.subpath = path.substr(prefix_len);
      return m;
    }
    if (first == nullptr) first = &r;
    for (const auto& v : r.methods) {
      add_verb(v);
      if (v == "GET") add_verb("HEAD");
    }
  }
  m.error = HttpError(405, "method not allowed", first->options.api);
  m.error.headers.push_back({"Allow", fmt::format("{}", fmt::join(verbs, ", "))});
  return m;
}

std::string_view TargetPath(std::string_view target) {
  target = target.substr(0, target.find('?'));
  if (target.starts_with('/')) return target;
  // Absolute form (RFC 9112 3.2.2): skip the scheme and the authority.
  const auto scheme = target.find("://");
  if (scheme == std::string_view::npos) return target;  // "*" or garbage: routes nowhere
  const auto slash = target.find('/', scheme + 3);
  return slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
}

std::string_view TargetQuery(std::string_view target) {
  const auto q = target.find('?');
  return q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}

}  // namespace mailscope::net
