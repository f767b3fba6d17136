// Keys shared by both daemons, and the rules that tie them together.
#include "common/ServerConfig.h"

#include <filesystem>
#include <fstream>

namespace dspy {
namespace {

constexpr std::size_t kMaxTokenFileBytes = 4096;

Status readable(const std::string& key, const std::string& path) {
  if (path.empty()) return Status::Ok();
  std::ifstream f(path);
  if (!f) return Error{"key '" + key + "': cannot read file '" + path + "'"};
  return Status::Ok();
}

}  // namespace

void describeServerConfig(config::Schema& s, ServerConfig& cfg, const ServerEnvNames& env) {
  s.address("grpc.address", &cfg.grpc_address, env.grpc_address);
  s.integer("grpc.max_message_bytes", &cfg.grpc_max_message_bytes, 1024, 256LL * 1024 * 1024);
  s.address("http.address", &cfg.http_address, env.http_address);
  s.integer("http.max_body_bytes", &cfg.http_max_body_bytes, 1024, 256LL * 1024 * 1024);
  s.integer("http.max_connections", &cfg.http_max_connections, 1, 10'000);
  s.integer("http.keepalive_timeout_seconds", &cfg.http_keepalive_timeout_seconds, 1, 3600);
  s.string("tls.cert_file", &cfg.tls.cert_file);
  s.string("tls.key_file", &cfg.tls.key_file);
  s.string("tls.client_ca_file", &cfg.tls.client_ca_file);
  s.string("auth.token", &cfg.auth_token);
  s.string("auth.token_file", &cfg.auth_token_file);
  s.choice("log.level", &cfg.log.level, {"trace", "debug", "info", "warn", "error"});
  s.choice("log.format", &cfg.log.format, {"text", "json"});
  if (!env.verbose.empty()) {
    s.env(env.verbose, [&cfg](const std::string& v) -> Status {
      if (v == "1" || v == "true" || v == "yes" || v == "on") cfg.log.level = "debug";
      else if (!(v.empty() || v == "0" || v == "false" || v == "no" || v == "off"))
        return Error{"expected true or false, got '" + v + "'"};
      return Status::Ok();
    });
  }
  s.check([&cfg]() -> Status {
    if (cfg.tls.cert_file.empty() != cfg.tls.key_file.empty()) {
      return Error{"tls.cert_file and tls.key_file must be set together"};
    }
    if (!cfg.tls.client_ca_file.empty() && !cfg.tls.enabled()) {
      return Error{"tls.client_ca_file needs tls.cert_file and tls.key_file"};
    }
    for (auto [key, path] : {std::pair<const char*, const std::string*>{"tls.cert_file", &cfg.tls.cert_file},
                             {"tls.key_file", &cfg.tls.key_file},
                             {"tls.client_ca_file", &cfg.tls.client_ca_file}}) {
      if (Status st = readable(key, *path); !st.ok()) return st;
    }
    if (!cfg.auth_token_file.empty()) {
      // A regular file of at most 4 KiB: a device or a FIFO named by mistake (/dev/zero,
      // /dev/stdin) would otherwise be read forever at start.
      std::error_code ec;
      const auto st = std::filesystem::status(cfg.auth_token_file, ec);
      if (ec || !std::filesystem::is_regular_file(st)) {
        return Error{"key 'auth.token_file': '" + cfg.auth_token_file + "' is not a readable regular file"};
      }
      std::ifstream f(cfg.auth_token_file, std::ios::binary);
      if (!f) return Error{"key 'auth.token_file': cannot read file '" + cfg.auth_token_file + "'"};
      std::string token(kMaxTokenFileBytes + 1, '\0');
      f.read(token.data(), static_cast<std::streamsize>(token.size()));
      token.resize(static_cast<std::size_t>(f.gcount()));
      if (token.size() > kMaxTokenFileBytes) {
        return Error{"key 'auth.token_file': file '" + cfg.auth_token_file + "' is larger than 4 KiB"};
      }
      while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
        token.pop_back();
      }
      if (token.empty()) return Error{"key 'auth.token_file': file '" + cfg.auth_token_file + "' is empty"};
      cfg.auth_token = token;
    }
    if (!cfg.auth_token.empty() && !cfg.tls.enabled()) {
      // A token sent in clear over a network is a leaked token.
      for (auto [key, addr] : {std::pair<const char*, const std::string*>{"grpc.address", &cfg.grpc_address},
                               {"http.address", &cfg.http_address}}) {
        auto ep = config::parseEndpoint(*addr);
        if (ep && !(ep.value().host == "localhost" || ep.value().host == "::1" ||
                    ep.value().host.rfind("127.", 0) == 0)) {
          return Error{std::string("an auth token on the non-loopback ") + key + " '" + *addr +
                       "' needs TLS (set tls.cert_file and tls.key_file)"};
        }
      }
    }
    if (cfg.auth_token.find_first_of(" \t\r\n") != std::string::npos) {
      return Error{"auth token must not contain white space"};
    }
    return Status::Ok();
  });
}

}  // namespace dspy
