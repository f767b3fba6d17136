// Health probes with deadlines: TCP connect and RESP PING over plain sockets, HTTP GET
// through cpp-httplib.
#include "env_manager/health/HealthProber.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <cerrno>
#include <cstring>
#include <functional>

namespace dspy::envmanager {
namespace {

using Clock = std::chrono::steady_clock;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

int remainingMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Non-blocking connect with a deadline; "" on success, else why not.
std::string connectTo(Fd& s, const std::string& host, int port, Clock::time_point deadline) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(), &addr.sin_addr) != 1) {
    return "bad address " + host;
  }
  s.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s.fd < 0) return std::string("socket: ") + std::strerror(errno);
  if (connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return "";
  if (errno != EINPROGRESS) return "connect " + host + ":" + std::to_string(port) + ": " + std::strerror(errno);
  pollfd p{s.fd, POLLOUT, 0};
  if (poll(&p, 1, remainingMs(deadline)) != 1) return "connect " + host + ":" + std::to_string(port) + ": timed out";
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return "connect " + host + ":" + std::to_string(port) + ": " + std::strerror(err);
  return "";
}

bool sendAll(int fd, const std::string& data, Clock::time_point deadline) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, remainingMs(deadline)) != 1) return false;
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads until `enough` says so, the peer closes, or the deadline passes.
std::string readSome(int fd, Clock::time_point deadline, const std::function<bool(const std::string&)>& enough) {
  std::string out;
  char buf[1024];
  while (!enough(out)) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, remainingMs(deadline)) != 1) break;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > 64 * 1024) break;
  }
  return out;
}

ProbeResult finish(bool healthy, std::string message, Clock::time_point t0) {
  return {healthy, std::move(message), std::chrono::duration<double>(Clock::now() - t0).count()};
}

}  // namespace

ProbeResult probeTcp(const std::string& host, int port, std::chrono::milliseconds timeout) {
  const auto t0 = Clock::now();
  Fd s;
  std::string why = connectTo(s, host, port, t0 + timeout);
  if (!why.empty()) return finish(false, why, t0);
  return finish(true, "tcp " + host + ":" + std::to_string(port) + " accepts connections", t0);
}

ProbeResult probeHttp(const std::string& host, int port, const std::string& path, std::chrono::milliseconds timeout) {
  const auto t0 = Clock::now();
  httplib::Client client(host == "localhost" ? "127.0.0.1" : host, port);
  const auto secs = static_cast<time_t>(timeout.count() / 1000);
  const auto usecs = static_cast<time_t>((timeout.count() % 1000) * 1000);
  client.set_connection_timeout(secs, usecs);
  client.set_read_timeout(secs, usecs);
  client.set_write_timeout(secs, usecs);
  client.set_keep_alive(false);
  auto res = client.Get(path.c_str(), {{"User-Agent", "dspy-env-manager"}});
  if (!res) {
    return finish(false, "http GET " + host + ":" + std::to_string(port) + path + ": " + httplib::to_string(res.error()),
                  t0);
  }
  const int code = res->status;
  return finish(code >= 200 && code < 400, "http GET " + path + " -> " + std::to_string(code), t0);
}

ProbeResult probeRedis(const std::string& host, int port, std::chrono::milliseconds timeout) {
  const auto t0 = Clock::now();
  const auto deadline = t0 + timeout;
  Fd s;
  std::string why = connectTo(s, host, port, deadline);
  if (!why.empty()) return finish(false, why, t0);
  if (!sendAll(s.fd, "*1\r\n$4\r\nPING\r\n", deadline)) return finish(false, "redis: could not send PING", t0);
  const std::string resp = readSome(s.fd, deadline, [](const std::string& r) { return r.find("\r\n") != std::string::npos; });
  if (resp.rfind("+PONG", 0) == 0) return finish(true, "redis PING -> PONG", t0);
  return finish(false, "redis PING -> " + (resp.empty() ? std::string("no answer") : resp.substr(0, resp.find('\r'))), t0);
}

// The container's own address first: a published host port answers through Docker's
// userland proxy, which accepts a TCP connection even while nothing in the container
// listens (a tcp probe there passed before the service was up). The published port is
// the fallback when the container has no address we know.
ProbeTarget probeTarget(const ServiceSpec& spec, const docker::ContainerInfo& c, const std::string& network) {
  const int port = spec.healthcheck.port;
  auto it = c.network_ips.find(network);
  if (it != c.network_ips.end() && !it->second.empty()) return {it->second, port};
  for (const auto& [net, ip] : c.network_ips) {
    if (!ip.empty()) return {ip, port};
  }
  for (const auto& p : spec.ports) {
    if (p.container_port == port && p.host_port > 0 && p.protocol == "tcp") {
      return {p.host_ip == "0.0.0.0" || p.host_ip.empty() ? "127.0.0.1" : p.host_ip, p.host_port};
    }
  }
  return {};
}

ProbeResult RealHealthProber::probe(const ServiceSpec& spec, const docker::ContainerInfo& c, const std::string& network) {
  const auto& hc = spec.healthcheck;
  const auto t0 = Clock::now();
  switch (hc.kind) {
    case HealthCheckSpec::Kind::None:
      return finish(c.running, c.running ? "running (no health check)" : "not running", t0);
    case HealthCheckSpec::Kind::Docker:
      return finish(c.health == "healthy", "docker health: " + (c.health.empty() ? "none reported" : c.health), t0);
    case HealthCheckSpec::Kind::Exec: {
      // Docker runs the same command itself (a compose healthcheck): once it has a
      // verdict, take it rather than running the command a second time. Until then (a
      // start) probe ourselves, faster than Docker's first check.
      if (!hc.container_test.empty() && hc.container_test[0] != "NONE") {
        if (c.health == "healthy") return finish(true, "docker health: healthy", t0);
        if (c.health == "unhealthy") {
          ProbeResult r = finish(false, "docker health: unhealthy (" + std::to_string(hc.retries) + " failed checks)", t0);
          r.decided = true;
          return r;
        }
      }
      auto r = docker_.exec(c.id, hc.command, hc.timeout);
      if (!r) return finish(false, "exec: " + r.error(), t0);
      std::string out = r.value().output;
      if (out.size() > 200) out = out.substr(out.size() - 200);
      return finish(r.value().exit_code == 0, "exec exit " + std::to_string(r.value().exit_code) + (out.empty() ? "" : ": " + out), t0);
    }
    default:
      break;
  }
  const ProbeTarget t = probeTarget(spec, c, network);
  if (t.host.empty()) return finish(false, "no address to probe (container has no IP on " + network + ")", t0);
  if (hc.kind == HealthCheckSpec::Kind::Http) return probeHttp(t.host, t.port, hc.path, hc.timeout);
  if (hc.kind == HealthCheckSpec::Kind::Redis) return probeRedis(t.host, t.port, hc.timeout);
  return probeTcp(t.host, t.port, hc.timeout);
}

}  // namespace dspy::envmanager
