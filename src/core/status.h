// Status and Result<T>: errors as values across module boundaries.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "core/check.h"

namespace mailscope {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // untrusted input is malformed
  kNotFound,
  kAlreadyExists,
  kResourceExhausted,  // a limit was hit
  kUnavailable,        // the environment failed (peer gone, cannot bind)
  kFailedPrecondition,
  kInternal,
};

std::string_view StatusCodeName(StatusCode code);

// Status is a code plus a human message. The default Status is OK.
// Thread-compatible value type.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  // `reason` is a short static label (e.g. "invalid_base64") for counters.
  Status(StatusCode code, const char* reason, std::string message)
      : code_(code), reason_(reason), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The counter label given at construction, else the code's name in lower case.
  std::string_view reason() const;

  // "INVALID_ARGUMENT: message", or "OK".
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  const char* reason_ = nullptr;
  std::string message_;
};

inline Status InvalidArgument(std::string msg) {
  return {StatusCode::kInvalidArgument, std::move(msg)};
}
// Untrusted input rejected, with a counter label.
inline Status Rejected(const char* reason, std::string msg) {
  return {StatusCode::kInvalidArgument, reason, std::move(msg)};
}
inline Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
inline Status AlreadyExists(std::string msg) {
  return {StatusCode::kAlreadyExists, std::move(msg)};
}
inline Status ResourceExhausted(std::string msg) {
  return {StatusCode::kResourceExhausted, std::move(msg)};
}
// Untrusted input refused for a limit it hit, with a counter label.
inline Status ResourceExhausted(const char* reason, std::string msg) {
  return {StatusCode::kResourceExhausted, reason, std::move(msg)};
}
inline Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
inline Status FailedPrecondition(std::string msg) {
  return {StatusCode::kFailedPrecondition, std::move(msg)};
}
inline Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }

// Result<T> holds either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    MS_CHECK(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace mailscope

#define MS_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::mailscope::Status ms_status_ = (expr); \
    if (!ms_status_.ok()) return ms_status_; \
  } while (0)
