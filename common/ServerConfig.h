// ServerConfig: the part of each daemon's config that common/ serves: listen addresses,
// TLS, bearer-token auth and logging. Each daemon embeds it in its own config.
#pragma once

#include <cstdint>
#include <string>

#include "common/ConfigSchema.h"

namespace dspy {

struct LogConfig {
  std::string level = "info";   // trace, debug, info, warn, error
  std::string format = "text";  // text or json
};

struct TlsConfig {
  std::string cert_file;       // server certificate (PEM); empty = no TLS
  std::string key_file;        // its private key (PEM)
  std::string client_ca_file;  // when set, clients must present a certificate it signed (mTLS)
  bool enabled() const { return !cert_file.empty(); }
};

struct ServerConfig {
  std::string grpc_address;
  std::string http_address;
  std::int64_t grpc_max_message_bytes = 4 * 1024 * 1024;
  std::int64_t http_max_body_bytes = 1024 * 1024;
  std::int64_t http_max_connections = 256;
  std::int64_t http_keepalive_timeout_seconds = 5;
  TlsConfig tls;
  std::string auth_token;       // empty = no auth
  std::string auth_token_file;  // read at load; wins over auth.token
  LogConfig log;

  static ServerConfig withAddresses(std::string grpc, std::string http) {
    ServerConfig c;
    c.grpc_address = std::move(grpc);
    c.http_address = std::move(http);
    return c;
  }
};

// The environment variable names a daemon honours for the shared keys.
struct ServerEnvNames {
  std::string grpc_address;
  std::string http_address;
  std::string verbose;  // truthy value -> log.level debug
};

// Binds the shared keys (grpc.*, http.*, tls.*, auth.*, log.*) into `schema`.
void describeServerConfig(config::Schema& schema, ServerConfig& cfg, const ServerEnvNames& env);

}  // namespace dspy
