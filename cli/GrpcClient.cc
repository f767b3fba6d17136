// Shared gRPC plumbing of the CLI's commands.
#include "cli/GrpcClient.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace dspy::cli {

void withToken(grpc::ClientContext& ctx) {
  if (const char* t = std::getenv("DSPY_AGENT_TOKEN"); t != nullptr && *t != '\0') {
    ctx.AddMetadata("authorization", std::string("Bearer ") + t);
  }
}

int failed(const grpc::Status& s, const std::string& what) {
  std::fprintf(stderr, "%s failed: %s (%d)\n", what.c_str(), s.error_message().c_str(), static_cast<int>(s.error_code()));
  return 1;
}

std::shared_ptr<grpc::Channel> connect(const std::string& addr, const std::string& daemon) {
  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(3))) {
    std::fprintf(stderr,
                 "%s is not running: nothing answers on %s within 3 s (start it with `dspy-agent start`, or "
                 "`systemctl start dspy-agent.target`; --addr or $%s if it listens elsewhere)\n",
                 daemon.c_str(), addr.c_str(), daemon == "env-manager" ? "ENV_MANAGER_ADDR" : "ORCHESTRATOR_ADDR");
    return nullptr;
  }
  return channel;
}

void unary(grpc::ClientContext& ctx) {
  withToken(ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
}

CLI::App* commandGroup(CLI::App& app, const std::string& name, const std::string& help, std::string* addr,
                       const std::string& resolved, const char* addr_env, const std::string& daemon) {
  *addr = resolved;
  CLI::App* group = app.add_subcommand(name, help);
  group->require_subcommand(1);
  group->fallthrough();  // --addr may also follow the command
  group->add_option("--addr", *addr, daemon + "'s gRPC address (now " + resolved + "; from $" + addr_env +
                                         ", else its config file, else the default)");
  group->footer("A bearer token is read from $DSPY_AGENT_TOKEN.");
  return group;
}

}  // namespace dspy::cli
