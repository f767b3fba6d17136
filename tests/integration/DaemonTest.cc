// Both daemons as real processes: health, metrics, the contract's RPCs, signals,
// systemd notifications, config errors, auth and TLS.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "env_manager/v1/env_manager.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "orchestrator/v1/orchestrator.grpc.pb.h"
#include "tests/support/Http.h"
#include "tests/support/Process.h"

using namespace std::chrono_literals;
using dspy::test::ChildProcess;
using dspy::test::eventually;
using dspy::test::httpGet;

namespace {

struct DaemonKind {
  std::string name;
  std::string binary;
};

const DaemonKind kEnvManager{"env-manager", "env_manager/env-manager"};
const DaemonKind kOrchestrator{"orchestrator", "orchestrator/orchestrator"};

struct ClientTls {
  std::string ca, cert, key;  // PEM contents; empty = plain
};

std::string readAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class Daemon {
 public:
  Daemon(DaemonKind kind, const std::string& extra_yaml = "", std::map<std::string, std::string> env = {})
      : kind_(std::move(kind)), dir_(dspy::test::tempDir()) {
    grpc_port_ = dspy::test::freePort();
    http_port_ = dspy::test::freePort();
    config_ = dir_ + "/config.yaml";
    writeConfig(extra_yaml);
    proc_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{dspy::test::binary(kind_.binary), "--config", config_}, std::move(env),
        dir_ + "/daemon.log");
  }

  void writeConfig(const std::string& extra_yaml) const {
    std::string own;
    if (kind_.name == "env-manager") {
      // The default stack under a project name of its own, so that containers left by a
      // demo or another test on this machine are not adopted.
      std::string stack = readAll(std::string(DSPY_SOURCE_DIR) + "/deploy/config/services.yaml");
      const std::string project = "dspy-daemontest-" + std::to_string(grpc_port_);
      for (const std::string key : {"network: dspy-agent", "project: dspy-agent"}) {
        stack.replace(stack.find(key), key.size(), key.substr(0, key.find(':')) + ": " + project);
      }
      dspy::test::writeFile(dir_ + "/services.yaml", stack);
      own = "services:\n  file: " + dir_ + "/services.yaml\n";
    } else {
      own = "store:\n  dir: " + dir_ + "/state\n";
      // A port where no env-manager listens, unless the test names one.
      if (extra_yaml.find("env_manager:") == std::string::npos) {
        own += "env_manager:\n  address: 127.0.0.1:" + std::to_string(dspy::test::freePort()) + "\n";
      }
    }
    dspy::test::writeFile(config_, "grpc:\n  address: 127.0.0.1:" + std::to_string(grpc_port_) +
                                       "\nhttp:\n  address: 127.0.0.1:" + std::to_string(http_port_) + "\n" +
                                       own + extra_yaml);
  }

  std::shared_ptr<grpc::Channel> channel(const ClientTls& tls = {}) const {
    if (tls.ca.empty()) {
      return grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port_), grpc::InsecureChannelCredentials());
    }
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = tls.ca;
    o.pem_cert_chain = tls.cert;
    o.pem_private_key = tls.key;
    return grpc::CreateChannel("localhost:" + std::to_string(grpc_port_), grpc::SslCredentials(o));
  }

  grpc::Status healthCheck(const ClientTls& tls = {}) const {
    auto stub = grpc::health::v1::Health::NewStub(channel(tls));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    auto s = stub->Check(&ctx, req, &resp);
    if (s.ok() && resp.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
      return {grpc::StatusCode::UNAVAILABLE, "not serving"};
    }
    return s;
  }

  // Waits until gRPC health says SERVING; fails the test with the daemon's log if not.
  void waitServing(const ClientTls& tls = {}) {
    const bool up = eventually([&] { return healthCheck(tls).ok() || !proc_->running(); }, 10s) && proc_->running();
    INFO(proc_->log());
    REQUIRE(up);
  }

  std::string httpAddr() const { return "127.0.0.1:" + std::to_string(http_port_); }
  std::string grpcAddr() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  ChildProcess& proc() { return *proc_; }
  const std::string& dir() const { return dir_; }
  const std::string& configPath() const { return config_; }

 private:
  DaemonKind kind_;
  std::string dir_;
  std::string config_;
  int grpc_port_ = 0;
  int http_port_ = 0;
  std::unique_ptr<ChildProcess> proc_;
};

grpc::Status orchestratorHealth(const std::shared_ptr<grpc::Channel>& ch, const std::string& token = "",
                                orchestrator::v1::HealthResponse* out = nullptr) {
  auto stub = orchestrator::v1::OrchestratorService::NewStub(ch);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 2s);
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  orchestrator::v1::HealthResponse resp;
  auto s = stub->Health(&ctx, {}, &resp);
  if (out != nullptr) *out = resp;
  return s;
}

// A unix datagram socket standing in for systemd's notify socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~NotifySocket() { close(fd_); }
  // Collects messages until one contains `needle` or the timeout passes.
  bool waitFor(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) == 1) {
        char buf[4096];
        const ssize_t n = recv(fd_, buf, sizeof buf, 0);
        if (n > 0) seen_ += std::string(buf, static_cast<std::size_t>(n)) + "\n";
      }
      if (seen_.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  const std::string& seen() const { return seen_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::string seen_;
};

}  // namespace

TEST_CASE("both daemons answer grpc.health.v1, /health and /metrics", "[daemon]") {
  for (const auto& kind : {kEnvManager, kOrchestrator}) {
    DYNAMIC_SECTION(kind.name) {
      // A container class makes the orchestrator use env-manager, which is not there.
      Daemon d(kind, kind.name == "orchestrator" ? "tasks:\n  classes:\n    c: {executor: container}\n" : "");
      d.waitServing();
      auto health = httpGet(d.httpAddr(), "/health");
      REQUIRE(health.status == 200);
      auto j = nlohmann::json::parse(health.body);
      CHECK(j.at("daemon") == kind.name);
      CHECK(j.at("service") == kind.name);
      CHECK(j.at("timestamp").get<std::int64_t>() > 1'700'000'000);
      if (kind.name == "env-manager") {
        // The old env-manager's body: {"status":"healthy","service":"env-manager",...}.
        CHECK(j.at("status") == "healthy");
        CHECK(j.at("health") == "ok");
      } else {
        // A missing env-manager degrades the orchestrator (and says why) without
        // taking it down.
        CHECK(j.at("components").at("store") == "ok");
        CHECK(eventually([&] {
          auto h = nlohmann::json::parse(httpGet(d.httpAddr(), "/health").body);
          return h.at("status") == "degraded" && h.at("components").at("env_manager") == "unreachable";
        }, 5s));
      }
      auto metrics = httpGet(d.httpAddr(), "/metrics");
      REQUIRE(metrics.status == 200);
      CHECK_THAT(metrics.content_type, Catch::StartsWith("text/plain; version=0.0.4"));
      CHECK_THAT(metrics.body, Catch::Contains("dspy_build_info{daemon=\"" + kind.name + "\""));
    }
  }
}

TEST_CASE("the orchestrator's env-manager link is ready once env-manager serves", "[daemon]") {
  Daemon em(kEnvManager);
  em.waitServing();
  Daemon orch(kOrchestrator, "env_manager:\n  address: " + em.grpcAddr() +
                                "\ntasks:\n  classes:\n    c: {executor: container}\n");
  orch.waitServing();
  CHECK(eventually([&] {
    auto h = nlohmann::json::parse(httpGet(orch.httpAddr(), "/health").body);
    return h.at("status") == "ok" && h.at("components").at("env_manager") == "ready";
  }, 5s));
  orchestrator::v1::HealthResponse health;
  REQUIRE(orchestratorHealth(orch.channel(), "", &health).ok());
  CHECK(health.services().at("env_manager") == "ready");
  CHECK(health.services().at("store") == "ok");
}

TEST_CASE("contract RPCs answer for real or UNIMPLEMENTED, never a fake success", "[daemon]") {
  Daemon em(kEnvManager);
  Daemon orch(kOrchestrator);
  em.waitServing();
  orch.waitServing();

  // env-manager's RPCs are built: the default stack is known and nothing runs yet.
  auto em_stub = env_manager::v1::EnvManagerService::NewStub(em.channel());
  grpc::ClientContext c1;
  env_manager::v1::ServicesStatusResponse status_resp;
  REQUIRE(em_stub->GetServicesStatus(&c1, {}, &status_resp).ok());
  CHECK(status_resp.services().size() == 9);
  CHECK(status_resp.services().at("redis").status() == "stopped");
  CHECK(status_resp.services().at("redis").container_id().empty());

  grpc::ClientContext c2;
  env_manager::v1::StartServicesRequest start;
  start.add_service_names("no-such-service");
  auto reader = em_stub->StartServices(&c2, start);
  env_manager::v1::ServiceStatusUpdate update;
  CHECK_FALSE(reader->Read(&update));
  CHECK(reader->Finish().error_code() == grpc::StatusCode::NOT_FOUND);

  auto orch_stub = orchestrator::v1::OrchestratorService::NewStub(orch.channel());
  grpc::ClientContext c3;
  orchestrator::v1::SubmitTaskRequest submit;
  submit.set_id("t1");
  submit.set_class_("no such class!");
  orchestrator::v1::SubmitTaskResponse submit_resp;
  auto s = orch_stub->SubmitTask(&c3, submit, &submit_resp);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(s.error_message(), Catch::Contains("bad task class 'no such class!'"));
  CHECK_FALSE(submit_resp.success());
  grpc::ClientContext c4;
  orchestrator::v1::CreateWorkflowResponse wf_resp;
  auto wf = orch_stub->CreateWorkflow(&c4, orchestrator::v1::CreateWorkflowRequest(), &wf_resp);
  CHECK(wf.error_code() == grpc::StatusCode::INVALID_ARGUMENT);  // built: an empty spec is refused
  CHECK_FALSE(wf_resp.success());
  grpc::ClientContext c5;
  orchestrator::v1::StreamEventsRequest bad_filter;
  bad_filter.add_event_types("task_done");
  auto events = orch_stub->StreamEvents(&c5, bad_filter);
  orchestrator::v1::SystemEvent event;
  CHECK_FALSE(events->Read(&event));
  const auto events_status = events->Finish();
  CHECK(events_status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);  // built: a bad filter is named
  CHECK_THAT(events_status.error_message(), Catch::Contains("'task_done'"));

  orchestrator::v1::HealthResponse health;
  REQUIRE(orchestratorHealth(orch.channel(), "", &health).ok());
  CHECK(health.healthy());
  CHECK_FALSE(health.version().empty());
}

TEST_CASE("SIGTERM stops a daemon within 2 s, telling systemd READY, WATCHDOG, then STOPPING", "[daemon][signals]") {
  for (const auto& kind : {kEnvManager, kOrchestrator}) {
    DYNAMIC_SECTION(kind.name) {
      const std::string sock_dir = dspy::test::tempDir();
      NotifySocket notify(sock_dir + "/notify.sock");
      Daemon d(kind, "", {{"NOTIFY_SOCKET", sock_dir + "/notify.sock"}, {"WATCHDOG_USEC", "200000"}});
      d.waitServing();
      REQUIRE(notify.waitFor("READY=1", 5s));
      CHECK(notify.waitFor("WATCHDOG=1", 2s));
      // An idle kept-alive HTTP client (a Prometheus, a requests.Session) does not hold
      // the stop up.
      const int idle = dspy::test::openIdleKeptAliveConnection(std::stoi(d.httpAddr().substr(d.httpAddr().rfind(':') + 1)));
      REQUIRE(idle >= 0);
      const auto t0 = std::chrono::steady_clock::now();
      d.proc().signal(SIGTERM);
      const auto code = d.proc().waitExit(5s);
      const auto took = std::chrono::steady_clock::now() - t0;
      REQUIRE(code.has_value());
      CHECK(*code == 0);
      CHECK(took < 2s);
      CHECK(notify.waitFor("STOPPING=1", 1s));
      ::close(idle);
    }
  }
}

TEST_CASE("SIGHUP reloads the config without stopping; a broken file is rejected", "[daemon][signals]") {
  Daemon d(kOrchestrator);
  d.waitServing();
  REQUIRE(httpGet(d.httpAddr(), "/metrics").status == 200);

  // A valid change applies live: a token appears.
  d.writeConfig("auth:\n  token: fresh\n");
  d.proc().signal(SIGHUP);
  REQUIRE(eventually([&] { return httpGet(d.httpAddr(), "/metrics").status == 401; }, 5s));
  CHECK(httpGet(d.httpAddr(), "/metrics", {.token = "fresh"}).status == 200);
  CHECK(orchestratorHealth(d.channel()).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(orchestratorHealth(d.channel(), "fresh").ok());

  // A broken file changes nothing and the daemon keeps serving.
  d.writeConfig("auth:\n  token: other\nlog:\n  level: [\n");
  d.proc().signal(SIGHUP);
  REQUIRE(eventually([&] { return d.proc().log().find("reload rejected") != std::string::npos; }, 5s));
  CHECK(d.proc().running());
  CHECK(httpGet(d.httpAddr(), "/metrics", {.token = "fresh"}).status == 200);
  CHECK(d.healthCheck().ok());
}

TEST_CASE("an invalid config stops the daemon before it listens, naming file and line", "[daemon][config]") {
  Daemon d(kEnvManager, "log:\n  lvl: debug\n");
  const auto code = d.proc().waitExit(5s);
  REQUIRE(code.has_value());
  CHECK(*code == 2);
  CHECK_THAT(d.proc().log(), Catch::Contains(d.configPath() + ":8:3: unknown key 'log.lvl'"));

  ChildProcess check({dspy::test::binary("orchestrator/orchestrator"), "--config", d.configPath(), "--check-config"},
                     {}, d.dir() + "/check.log");
  CHECK(check.waitExit(5s) == std::optional<int>(2));
  dspy::test::writeFile(d.dir() + "/orchestrator.yaml", "log:\n  level: debug\n");
  ChildProcess ok({dspy::test::binary("orchestrator/orchestrator"), "--config", d.dir() + "/orchestrator.yaml",
                   "--check-config"},
                  {}, d.dir() + "/check-ok.log");
  CHECK(ok.waitExit(5s) == std::optional<int>(0));
  CHECK_THAT(ok.log(), Catch::Contains("configuration OK"));
}

TEST_CASE("a port already in use is a clear start failure", "[daemon]") {
  Daemon first(kEnvManager);
  first.waitServing();
  ChildProcess second({dspy::test::binary("env_manager/env-manager"), "--config", first.configPath()}, {},
                      first.dir() + "/second.log");
  const auto code = second.waitExit(5s);
  REQUIRE(code.has_value());
  CHECK(*code == 1);
  CHECK_THAT(second.log(), Catch::Contains("cannot listen on gRPC address"));
  CHECK(first.healthCheck().ok());
}

TEST_CASE("a bearer token guards every gRPC call except health checks", "[daemon][auth]") {
  Daemon d(kOrchestrator, "auth:\n  token: t0k\n");
  d.waitServing();  // grpc.health.v1 needs no token
  CHECK(orchestratorHealth(d.channel()).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(orchestratorHealth(d.channel(), "wrong").error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(orchestratorHealth(d.channel(), "t0k").ok());
  CHECK(httpGet(d.httpAddr(), "/health").status == 200);
  CHECK(httpGet(d.httpAddr(), "/metrics").status == 401);
}

TEST_CASE("TLS and mTLS on gRPC and HTTP", "[daemon][tls]") {
  const std::string certs = dspy::test::tempDir();
  REQUIRE(std::system(("bash " + std::string(DSPY_SOURCE_DIR) + "/tests/support/make-certs.sh " + certs).c_str()) == 0);
  const ClientTls server_only{readAll(certs + "/ca.pem"), "", ""};
  const ClientTls with_client{readAll(certs + "/ca.pem"), readAll(certs + "/client.pem"), readAll(certs + "/client.key")};

  SECTION("server certificate only") {
    Daemon d(kOrchestrator, "tls:\n  cert_file: " + certs + "/server.pem\n  key_file: " + certs + "/server.key\n");
    d.waitServing(server_only);
    CHECK(orchestratorHealth(d.channel(server_only)).ok());
    CHECK_FALSE(d.healthCheck().ok());  // a plain client cannot talk to a TLS server
    auto https = httpGet(d.httpAddr(), "/health", {.ca_file = certs + "/ca.pem"});
    CHECK(https.status == 200);
  }
  SECTION("client certificates required") {
    Daemon d(kOrchestrator, "tls:\n  cert_file: " + certs + "/server.pem\n  key_file: " + certs +
                                "/server.key\n  client_ca_file: " + certs + "/ca.pem\n");
    d.waitServing(with_client);
    CHECK(orchestratorHealth(d.channel(with_client)).ok());
    CHECK_FALSE(orchestratorHealth(d.channel(server_only)).ok());
    CHECK(httpGet(d.httpAddr(), "/health",
                  {.ca_file = certs + "/ca.pem", .client_cert_file = certs + "/client.pem",
                   .client_key_file = certs + "/client.key"})
              .status == 200);
    CHECK_FALSE(httpGet(d.httpAddr(), "/health", {.ca_file = certs + "/ca.pem"}).connected);
  }
}
