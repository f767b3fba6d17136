// What every gRPC command of the CLI does the same way: the bearer token, reporting a
// failed call, and connecting with a short deadline.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace dspy::cli {

// Adds `authorization: Bearer $DSPY_AGENT_TOKEN` when the variable is set.
void withToken(grpc::ClientContext& ctx);
// A unary call's context: the token and a 30 s deadline.
void unary(grpc::ClientContext& ctx);
// Prints "WHAT failed: message (code)" and returns exit code 1.
int failed(const grpc::Status& s, const std::string& what);
// A channel to `addr` that is connected, or nullptr after printing that `daemon` is
// not reachable (3 s).
std::shared_ptr<grpc::Channel> connect(const std::string& addr, const std::string& daemon);

// A group of commands towards one daemon (`services`, `tasks`, `workflows`): one
// subcommand is required, `--addr` (default `resolved`, see Addresses.h; `addr_env` is
// named in the help) may come before or after it, and the help names the token variable.
CLI::App* commandGroup(CLI::App& app, const std::string& name, const std::string& help, std::string* addr,
                       const std::string& resolved, const char* addr_env, const std::string& daemon);

// A command's action: connect to `options->addr`, run `command` on a stub of `Service`
// and put its result in *exit_code (1 when the daemon is not reachable).
template <class Service, class Options>
std::function<void()> runCommand(std::shared_ptr<Options> options, const char* daemon, int* exit_code,
                                 int (*command)(typename Service::Stub&, const Options&)) {
  return [options, daemon, exit_code, command] {
    auto channel = connect(options->addr, daemon);
    if (!channel) {
      *exit_code = 1;
      return;
    }
    auto stub = Service::NewStub(channel);
    *exit_code = command(*stub, *options);
  };
}

}  // namespace dspy::cli
