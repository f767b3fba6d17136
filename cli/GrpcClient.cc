// Shared gRPC plumbing of the CLI's commands.
#include "cli/GrpcClient.h"

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
    std::fprintf(stderr, "%s at %s is not reachable\n", daemon.c_str(), addr.c_str());
    return nullptr;
  }
  return channel;
}

}  // namespace dspy::cli
