// HttpServer: the daemons' HTTP listener (health, metrics, JSON APIs). It hides
// cpp-httplib behind plain request/response structs so only HttpServer.cc pays for
// the header, and it applies auth, body limits, JSON errors and request metrics to
// every route.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/Result.h"
#include "common/ServerConfig.h"

namespace dspy {

class Metrics;
class TokenAuth;

struct HttpRequest {
  std::string method;
  std::string path;
  std::string body;
  std::vector<std::string> matches;  // [0] = whole path, then the pattern's groups
  std::multimap<std::string, std::string> params;
  std::multimap<std::string, std::string> headers;

  std::optional<std::string> param(const std::string& name) const;
  std::optional<std::string> header(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";

  // {"error": message} with `status`.
  static HttpResponse error(int status, const std::string& message);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// A streamed response (Server-Sent Events, ...): the handler either refuses with
// `refusal` (producer empty) or returns a producer. The producer runs on the
// connection's thread and writes chunks until it is done, a write fails (the client
// went away) or `stop` is requested (the server stops).
struct HttpStream {
  using Write = std::function<bool(const std::string& chunk)>;
  HttpResponse refusal;
  std::string content_type = "text/event-stream";
  std::function<void(const Write& write, std::stop_token stop)> producer;
};
using HttpStreamHandler = std::function<HttpStream(const HttpRequest&)>;

class HttpServer {
 public:
  struct Options {
    std::string address;  // host:port; port 0 picks a free one
    std::int64_t max_body_bytes = 1024 * 1024;
    TlsConfig tls;
    // Connections served at once (a thread each while open); more wait their turn.
    std::int64_t max_connections = 256;
    // An idle kept-alive connection is closed after this long.
    std::int64_t keepalive_timeout_seconds = 5;
  };

  HttpServer(Options options, std::shared_ptr<TokenAuth> auth, Metrics& metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // `pattern` is a regular expression matched against the whole path. Public routes
  // skip the bearer token check. Register routes before start().
  void route(const std::string& method, const std::string& pattern, HttpHandler handler, bool is_public = false);
  // A GET route whose answer is streamed (chunked, no caching).
  void routeStream(const std::string& pattern, HttpStreamHandler handler);
  // Streams open now (for metrics and tests).
  int openStreams() const;

  // Binds and serves on a background thread. Fails with a message naming the address.
  Status start();
  int port() const;
  // Stops accepting and waits for the serving thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dspy
