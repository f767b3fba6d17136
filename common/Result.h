// Result<T>: a value or an error, for code that fails for expected reasons (bad config,
// bad input, an unreachable peer). The error carries a kind so callers can map it to a
// gRPC status or HTTP code. Exceptions stay at library boundaries.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace dspy {

enum class ErrorKind {
  Internal,         // a bug or an unexpected answer
  InvalidArgument,  // the caller's input is wrong
  NotFound,         // the named thing does not exist
  AlreadyExists,    // conflicts with something that exists
  Unavailable,      // a peer (Docker, Slurm, Kafka, env-manager) cannot be reached now
  Timeout,          // a deadline passed
  Cancelled,        // the caller went away or asked to stop
  FailedPrecondition,
};

// The HTTP code for an error kind.
inline int httpCode(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::InvalidArgument: return 400;
    case ErrorKind::NotFound: return 404;
    case ErrorKind::AlreadyExists: return 409;
    case ErrorKind::FailedPrecondition: return 409;
    case ErrorKind::Unavailable: return 503;
    case ErrorKind::Timeout: return 504;
    case ErrorKind::Cancelled: return 499;
    case ErrorKind::Internal: return 500;
  }
  return 500;
}

struct Error {
  std::string message;
  ErrorKind kind = ErrorKind::Internal;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const std::string& error() const { return std::get<1>(v_).message; }
  ErrorKind kind() const { return std::get<1>(v_).kind; }
  const Error& fullError() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Status: success or an error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT

  static Status Ok() { return {}; }
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const std::string& error() const { return error_.message; }
  ErrorKind kind() const { return error_.kind; }
  const Error& fullError() const { return error_; }

 private:
  Error error_;
  bool failed_ = false;
};

}  // namespace dspy
