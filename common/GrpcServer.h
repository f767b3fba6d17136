// GrpcServer: builds a daemon's gRPC server the same way for both daemons: the
// standard grpc.health.v1 service, server reflection, message size limits, TLS/mTLS,
// and a bearer token checked on every call except health checks.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/Result.h"
#include "common/ServerConfig.h"

namespace grpc {
class Server;
class ServerCredentials;
class Service;
}  // namespace grpc

namespace dspy {

class TokenAuth;

class GrpcServer {
 public:
  struct Options {
    std::string address;  // host:port; port 0 picks a free one
    std::int64_t max_message_bytes = 4 * 1024 * 1024;
    TlsConfig tls;
  };

  GrpcServer(Options options, std::shared_ptr<TokenAuth> auth);
  ~GrpcServer();

  // Services must outlive the server. Register before start().
  void addService(grpc::Service* service);
  Status start();
  int port() const { return port_; }
  // Reported through grpc.health.v1 for "" and every registered service name.
  void setServing(bool serving);
  // Stops accepting, lets calls in flight finish until `grace` passes, then cancels them.
  void shutdown(std::chrono::milliseconds grace);

 private:
  Options options_;
  std::shared_ptr<TokenAuth> auth_;
  std::vector<grpc::Service*> services_;
  // Must outlive server_: gRPC's credentials object owns the token processor while the
  // core keeps only a raw pointer to it (a local here was a use-after-free on every
  // authenticated call, found by TSan).
  std::shared_ptr<grpc::ServerCredentials> creds_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// True for 127.0.0.0/8, ::1 and localhost.
bool isLoopbackHost(const std::string& host);

}  // namespace dspy
