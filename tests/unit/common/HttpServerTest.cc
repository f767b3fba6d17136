// The HTTP listener: /metrics format, auth, JSON errors, body limit, handler failures.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <memory>
#include <vector>
#include <nlohmann/json.hpp>

#include "common/HttpServer.h"
#include "common/Metrics.h"
#include "common/TokenAuth.h"
#include "tests/support/Http.h"

using dspy::test::httpGet;
using dspy::test::httpRequest;

namespace {

struct Fixture {
  dspy::Metrics metrics{"testd", "9.9.9"};
  std::shared_ptr<dspy::TokenAuth> auth = std::make_shared<dspy::TokenAuth>();
  dspy::HttpServer server{{.address = "127.0.0.1:0", .max_body_bytes = 4096, .tls = {}}, auth, metrics};
  std::string addr;

  Fixture() {
    server.route("GET", "/metrics", [this](const dspy::HttpRequest&) {
      return dspy::HttpResponse{200, metrics.render(), dspy::Metrics::kContentType};
    });
    server.route("GET", "/health", [](const dspy::HttpRequest&) { return dspy::HttpResponse{200, R"({"status":"ok"})"}; },
                 true);
    server.route("POST", "/echo", [](const dspy::HttpRequest& r) { return dspy::HttpResponse{200, r.body}; });
    server.route("GET", R"(/items/([a-z0-9]+))", [](const dspy::HttpRequest& r) {
      return dspy::HttpResponse{200, nlohmann::json{{"id", r.matches.at(1)}, {"q", r.param("q").value_or("")}}.dump()};
    });
    server.route("GET", "/boom", [](const dspy::HttpRequest&) -> dspy::HttpResponse {
      throw std::runtime_error("kaboom");
    });
    REQUIRE(server.start().ok());
    addr = "127.0.0.1:" + std::to_string(server.port());
  }
};

}  // namespace

TEST_CASE("GET /metrics answers Prometheus text with build info and request counts", "[http][metrics]") {
  Fixture f;
  REQUIRE(httpGet(f.addr, "/health").status == 200);
  auto r = httpGet(f.addr, "/metrics");
  REQUIRE(r.status == 200);
  CHECK_THAT(r.content_type, Catch::StartsWith("text/plain; version=0.0.4"));
  CHECK_THAT(r.body, Catch::Contains("# TYPE dspy_build_info gauge"));
  CHECK_THAT(r.body, Catch::Contains(R"(dspy_build_info{daemon="testd",version="9.9.9"} 1)"));
  CHECK_THAT(r.body, Catch::Contains(R"(http_requests_total{code="200",route="/health"} 1)"));
  CHECK_THAT(r.body, Catch::Contains("process_resident_memory_bytes"));
}

TEST_CASE("with a token every route but /health needs it", "[http][auth]") {
  Fixture f;
  f.auth->setToken("tok");
  CHECK(httpGet(f.addr, "/health").status == 200);
  auto denied = httpGet(f.addr, "/metrics");
  CHECK(denied.status == 401);
  CHECK(nlohmann::json::parse(denied.body).at("error") == "missing or wrong bearer token");
  CHECK(httpGet(f.addr, "/metrics", {.token = "nope"}).status == 401);
  CHECK(httpGet(f.addr, "/metrics", {.token = "tok"}).status == 200);
  CHECK(httpRequest("POST", f.addr, "/echo", "{}").status == 401);
}

TEST_CASE("unknown routes, oversized bodies and failing handlers get JSON errors", "[http]") {
  Fixture f;
  auto missing = httpGet(f.addr, "/nope");
  CHECK(missing.status == 404);
  CHECK(nlohmann::json::parse(missing.body).at("error") == "no route for GET /nope");

  auto big = httpRequest("POST", f.addr, "/echo", std::string(8192, 'x'));
  CHECK(big.status == 413);
  CHECK(nlohmann::json::parse(big.body).contains("error"));
  CHECK(httpRequest("POST", f.addr, "/echo", "small").body == "small");

  auto boom = httpGet(f.addr, "/boom");
  CHECK(boom.status == 500);
  CHECK_THAT(nlohmann::json::parse(boom.body).at("error").get<std::string>(), Catch::Contains("kaboom"));
  CHECK(httpGet(f.addr, "/health").status == 200);  // still serving
}

TEST_CASE("path groups and query parameters reach the handler", "[http]") {
  Fixture f;
  auto r = httpGet(f.addr, "/items/ab12?q=x");
  REQUIRE(r.status == 200);
  auto j = nlohmann::json::parse(r.body);
  CHECK(j.at("id") == "ab12");
  CHECK(j.at("q") == "x");
  CHECK(httpGet(f.addr, "/items/AB").status == 404);
}

TEST_CASE("a busy port is a clear start error", "[http]") {
  Fixture f;
  dspy::HttpServer second({.address = f.addr, .max_body_bytes = 1024, .tls = {}}, f.auth, f.metrics);
  auto s = second.start();
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error(), Catch::Contains("cannot listen on HTTP address " + f.addr));
}

TEST_CASE("a known path with the wrong method is 405 with an Allow header; an unknown path is 404", "[http]") {
  Fixture f;
  auto r = httpRequest("POST", f.addr, "/metrics", "{}");
  CHECK(r.status == 405);
  CHECK(r.allow == "GET, HEAD");
  CHECK_THAT(nlohmann::json::parse(r.body).at("error").get<std::string>(),
             Catch::Contains("POST is not allowed on /metrics"));
  auto put = httpRequest("PUT", f.addr, "/items/abc", "{}");
  CHECK(put.status == 405);
  CHECK(put.allow == "GET, HEAD");
  auto get_echo = httpGet(f.addr, "/echo");
  CHECK(get_echo.status == 405);
  CHECK(get_echo.allow == "POST");
  CHECK(httpRequest("DELETE", f.addr, "/nowhere").status == 404);
  CHECK(httpGet(f.addr, "/items/ABC").status == 404);  // the pattern does not match
}

TEST_CASE("idle kept-alive connections do not starve new clients", "[http]") {
  Fixture f;
  // More idle kept-alive clients than a fixed pool of 8 threads would serve.
  std::vector<int> idle;
  for (int i = 0; i < 24; ++i) idle.push_back(dspy::test::openIdleKeptAliveConnection(f.server.port()));
  for (int fd : idle) REQUIRE(fd >= 0);
  // A new client is answered while all of them stay connected (the test client gives
  // up after 5 s; the keep-alive timeout is 5 s too, so waiting it out would not pass).
  auto r = httpGet(f.addr, "/health");
  CHECK(r.connected);
  CHECK(r.status == 200);
  for (int fd : idle) ::close(fd);
}

TEST_CASE("stop does not wait for idle kept-alive clients", "[http]") {
  auto f = std::make_unique<Fixture>();
  const int fd = dspy::test::openIdleKeptAliveConnection(f->server.port());
  REQUIRE(fd >= 0);
  const auto t0 = std::chrono::steady_clock::now();
  f->server.stop();
  // The keep-alive timeout is 5 s; a stop that waited for the client would take that long.
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
  char c;
  CHECK(::recv(fd, &c, 1, 0) == 0);  // the server closed its side
  ::close(fd);
}

namespace {

// A raw client for streamed answers: sends a GET and returns the socket.
int openStream(int port, const std::string& path, const std::string& extra_headers = "") {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + extra_headers + "\r\n";
  (void)::send(fd, req.data(), req.size(), 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Reads until `needle` arrived (true) or the peer closed / 5 s passed (false).
bool readUntil(int fd, std::string& got, const std::string& needle) {
  char buf[4096];
  while (got.find(needle) == std::string::npos) {
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

TEST_CASE("a streamed route sends its chunks as they are written and ends on stop", "[http][stream]") {
  auto f = std::make_unique<Fixture>();
  std::atomic<bool> ended{false};
  std::mutex mu;
  std::condition_variable_any cv;
  int step = 0;  // the test lets the producer write one more chunk each time
  // Registered before start: a second server on a free port.
  dspy::HttpServer server{{.address = "127.0.0.1:0"}, f->auth, f->metrics};
  server.routeStream("/stream", [&](const dspy::HttpRequest& req) {
    dspy::HttpStream s;
    if (req.param("refuse")) {
      s.refusal = dspy::HttpResponse::error(400, "refused as asked");
      return s;
    }
    s.producer = [&](const dspy::HttpStream::Write& write, std::stop_token stop) {
      for (int i = 1; i <= 2; ++i) {
        std::unique_lock lock(mu);
        cv.wait(lock, stop, [&] { return step >= i; });
        if (stop.stop_requested()) break;
        lock.unlock();
        if (!write("data: chunk " + std::to_string(i) + "\n\n")) break;
      }
      // Then it waits for the end, as an event stream does.
      std::unique_lock lock(mu);
      cv.wait(lock, stop, [] { return false; });
      ended = true;
    };
    return s;
  });
  REQUIRE(server.start().ok());

  auto refused = httpGet("127.0.0.1:" + std::to_string(server.port()), "/stream?refuse=1");
  CHECK(refused.status == 400);
  CHECK_THAT(refused.body, Catch::Contains("refused as asked"));

  const int fd = openStream(server.port(), "/stream");
  REQUIRE(fd >= 0);
  std::string got;
  {
    std::lock_guard lock(mu);
    step = 1;
  }
  cv.notify_all();
  REQUIRE(readUntil(fd, got, "chunk 1"));
  CHECK_THAT(got, Catch::Contains("Content-Type: text/event-stream"));
  CHECK_THAT(got, Catch::Contains("Cache-Control: no-cache"));
  CHECK(got.find("chunk 2") == std::string::npos);  // not written yet
  {
    std::lock_guard lock(mu);
    step = 2;
  }
  cv.notify_all();
  REQUIRE(readUntil(fd, got, "chunk 2"));
  CHECK(server.openStreams() == 1);
  const auto t0 = std::chrono::steady_clock::now();
  server.stop();
  CHECK(ended);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
  CHECK(server.openStreams() == 0);
  ::close(fd);
}

TEST_CASE("a streamed route needs the token like any other", "[http][stream][auth]") {
  dspy::Metrics metrics{"testd", "9.9.9"};
  auto auth = std::make_shared<dspy::TokenAuth>();
  auth->setToken("s3cret");
  dspy::HttpServer server{{.address = "127.0.0.1:0"}, auth, metrics};
  server.routeStream("/stream", [](const dspy::HttpRequest&) {
    dspy::HttpStream s;
    s.producer = [](const dspy::HttpStream::Write& write, std::stop_token) { write("data: hello\n\n"); };
    return s;
  });
  REQUIRE(server.start().ok());
  const std::string addr = "127.0.0.1:" + std::to_string(server.port());
  CHECK(httpGet(addr, "/stream").status == 401);
  const int fd = openStream(server.port(), "/stream", "Authorization: Bearer s3cret\r\n");
  REQUIRE(fd >= 0);
  std::string got;
  CHECK(readUntil(fd, got, "data: hello"));
  ::close(fd);
}
