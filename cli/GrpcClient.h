// What every gRPC command of the CLI does the same way: the bearer token, reporting a
// failed call, and connecting with a short deadline.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace dspy::cli {

// Adds `authorization: Bearer $DSPY_AGENT_TOKEN` when the variable is set.
void withToken(grpc::ClientContext& ctx);
// Prints "WHAT failed: message (code)" and returns exit code 1.
int failed(const grpc::Status& s, const std::string& what);
// A channel to `addr` that is connected, or nullptr after printing that `daemon` is
// not reachable (3 s).
std::shared_ptr<grpc::Channel> connect(const std::string& addr, const std::string& daemon);

}  // namespace dspy::cli
