// GrpcErrors: how an Error of ours becomes a gRPC status (one mapping for both daemons;
// the HTTP mapping, httpCode, is in Result.h).
#pragma once

#include <grpcpp/support/status.h>

#include "common/Result.h"

namespace dspy {

inline grpc::StatusCode grpcCode(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::InvalidArgument: return grpc::StatusCode::INVALID_ARGUMENT;
    case ErrorKind::NotFound: return grpc::StatusCode::NOT_FOUND;
    case ErrorKind::AlreadyExists: return grpc::StatusCode::ALREADY_EXISTS;
    case ErrorKind::Unavailable: return grpc::StatusCode::UNAVAILABLE;
    case ErrorKind::Timeout: return grpc::StatusCode::DEADLINE_EXCEEDED;
    case ErrorKind::Cancelled: return grpc::StatusCode::CANCELLED;
    case ErrorKind::FailedPrecondition: return grpc::StatusCode::FAILED_PRECONDITION;
    case ErrorKind::Internal: return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::INTERNAL;
}

inline grpc::Status toGrpc(const Error& e) { return {grpcCode(e.kind), e.message}; }

// The gRPC code's name, as clients print it ("INVALID_ARGUMENT").
inline const char* grpcCodeName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::InvalidArgument: return "INVALID_ARGUMENT";
    case ErrorKind::NotFound: return "NOT_FOUND";
    case ErrorKind::AlreadyExists: return "ALREADY_EXISTS";
    case ErrorKind::Unavailable: return "UNAVAILABLE";
    case ErrorKind::Timeout: return "DEADLINE_EXCEEDED";
    case ErrorKind::Cancelled: return "CANCELLED";
    case ErrorKind::FailedPrecondition: return "FAILED_PRECONDITION";
    case ErrorKind::Internal: return "INTERNAL";
  }
  return "INTERNAL";
}

}  // namespace dspy
