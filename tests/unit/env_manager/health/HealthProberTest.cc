// The TCP, HTTP and Redis probes against real listeners on loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <thread>

#include "common/HttpServer.h"
#include "common/Metrics.h"
#include "common/TokenAuth.h"
#include "env_manager/health/HealthProber.h"
#include "tests/support/Process.h"

using namespace dspy::envmanager;
using namespace std::chrono_literals;

namespace {

// A loopback listener that answers every connection with `reply` once it has read
// something (nothing when `reply` is empty), then closes it.
class Responder {
 public:
  explicit Responder(std::string reply) : reply_(std::move(reply)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    REQUIRE(::listen(fd_, 16) == 0);
    thread_ = std::thread([this] {
      while (true) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;  // the listener was shut down
        char buf[256];
        if (::recv(c, buf, sizeof buf, 0) > 0 && !reply_.empty()) ::send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~Responder() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  std::string reply_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace

TEST_CASE("tcp probe: a listener passes, a closed port fails with the reason", "[health]") {
  Responder r("");
  auto ok = probeTcp("127.0.0.1", r.port(), 1s);
  CHECK(ok.healthy);
  CHECK(ok.message == "tcp 127.0.0.1:" + std::to_string(r.port()) + " accepts connections");
  const int closed = dspy::test::freePort();
  auto bad = probeTcp("127.0.0.1", closed, 1s);
  CHECK_FALSE(bad.healthy);
  CHECK_THAT(bad.message, Catch::Contains("Connection refused"));
}

TEST_CASE("http probe: 2xx and 3xx pass, 4xx and 5xx fail, no server fails", "[health]") {
  dspy::Metrics metrics{"probe-test", "0"};
  dspy::HttpServer server({.address = "127.0.0.1:0", .max_body_bytes = 4096, .tls = {}},
                          std::make_shared<dspy::TokenAuth>(), metrics);
  server.route("GET", "/ok", [](const dspy::HttpRequest&) { return dspy::HttpResponse{200, "{}"}; });
  server.route("GET", "/moved", [](const dspy::HttpRequest&) { return dspy::HttpResponse{302, "{}"}; });
  server.route("GET", "/broken", [](const dspy::HttpRequest&) { return dspy::HttpResponse{500, "{}"}; });
  REQUIRE(server.start().ok());
  const int port = server.port();
  CHECK(probeHttp("127.0.0.1", port, "/ok", 1s).healthy);
  CHECK(probeHttp("localhost", port, "/ok", 1s).message == "http GET /ok -> 200");
  CHECK(probeHttp("127.0.0.1", port, "/moved", 1s).healthy);
  auto missing = probeHttp("127.0.0.1", port, "/missing", 1s);
  CHECK_FALSE(missing.healthy);
  CHECK(missing.message == "http GET /missing -> 404");
  CHECK_FALSE(probeHttp("127.0.0.1", port, "/broken", 1s).healthy);
  server.stop();
  auto gone = probeHttp("127.0.0.1", port, "/ok", 1s);
  CHECK_FALSE(gone.healthy);
  CHECK_THAT(gone.message, Catch::StartsWith("http GET 127.0.0.1:" + std::to_string(port) + "/ok: "));
}

TEST_CASE("http probe: a listener that never answers fails within the timeout", "[health]") {
  // Accepts and reads, never writes: the probe must give up by its own deadline.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  REQUIRE(::listen(fd, 4) == 0);  // the kernel completes the handshake; nobody answers
  auto r = probeHttp("127.0.0.1", ntohs(a.sin_port), "/", 300ms);
  CHECK_FALSE(r.healthy);
  CHECK(r.seconds < 5.0);
  ::close(fd);
}

TEST_CASE("redis probe: PONG passes, anything else fails with what was said", "[health]") {
  Responder pong("+PONG\r\n");
  auto ok = probeRedis("127.0.0.1", pong.port(), 1s);
  CHECK(ok.healthy);
  CHECK(ok.message == "redis PING -> PONG");
  Responder loading("-LOADING Redis is loading the dataset in memory\r\n");
  auto bad = probeRedis("127.0.0.1", loading.port(), 1s);
  CHECK_FALSE(bad.healthy);
  CHECK(bad.message == "redis PING -> -LOADING Redis is loading the dataset in memory");
  Responder silent("");
  auto none = probeRedis("127.0.0.1", silent.port(), 1s);
  CHECK_FALSE(none.healthy);
  CHECK(none.message == "redis PING -> no answer");
}
