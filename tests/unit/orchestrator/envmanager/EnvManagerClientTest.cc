// The orchestrator's link to env-manager against a fake env-manager on loopback: the
// link state, ensure_services (retried until the stack is really up), ExecuteTask with
// the bearer token, and an unreachable address.
#include <catch2/catch.hpp>

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <mutex>

#include "common/Clock.h"
#include "env_manager/v1/env_manager.grpc.pb.h"
#include "orchestrator/envmanager/EnvManagerClient.h"
#include "tests/support/Process.h"

using namespace std::chrono_literals;
using dspy::test::eventually;
using namespace dspy::orchestrator;
namespace pb = env_manager::v1;

namespace {

// Answers StartServices with a closing summary: "failed" for the first `fail_starts`
// calls, "completed" after; ExecuteTask echoes what it got.
class FakeEnvManager final : public pb::EnvManagerService::CallbackService {
 public:
  std::atomic<int> fail_starts{0};
  std::atomic<int> start_calls{0};
  std::mutex mu;
  std::vector<std::string> started;
  std::string last_authorization;

  grpc::ServerWriteReactor<pb::ServiceStatusUpdate>* StartServices(grpc::CallbackServerContext* ctx,
                                                                   const pb::StartServicesRequest* req) override {
    remember(ctx);
    const bool fail = start_calls++ < fail_starts;
    {
      std::lock_guard lock(mu);
      started.assign(req->service_names().begin(), req->service_names().end());
    }
    class Reactor final : public grpc::ServerWriteReactor<pb::ServiceStatusUpdate> {
     public:
      explicit Reactor(bool fail) {
        msg_.set_status(fail ? "failed" : "completed");
        msg_.set_message(fail ? "0/1 services up" : "1/1 services up");
        StartWriteAndFinish(&msg_, {}, grpc::Status::OK);  // env-manager ends a failed start with OK too
      }
      void OnDone() override { delete this; }

     private:
      pb::ServiceStatusUpdate msg_;
    };
    return new Reactor(fail);
  }

  // The first call reports redis healthy twice, then unhealthy, and ends (as when
  // env-manager restarts); later calls report redis unhealthy and stay open.
  std::atomic<int> health_calls{0};
  grpc::ServerWriteReactor<pb::HealthUpdate>* StreamHealth(grpc::CallbackServerContext*,
                                                           const pb::StreamHealthRequest*) override {
    class Reactor final : public grpc::ServerWriteReactor<pb::HealthUpdate> {
     public:
      explicit Reactor(bool first) : hold_(!first) {
        for (bool healthy : first ? std::vector<bool>{true, true, false} : std::vector<bool>{false}) {
          pb::HealthUpdate u;
          u.set_service_name("redis");
          u.set_healthy(healthy);
          u.set_message(healthy ? "PONG" : "no answer");
          queue_.push_back(u);
        }
        next();
      }
      void OnWriteDone(bool ok) override {
        if (!ok) return Finish(grpc::Status::CANCELLED);
        next();
      }
      void OnCancel() override {
        if (hold_ && queue_.empty()) Finish(grpc::Status::CANCELLED);
      }
      void OnDone() override { delete this; }

     private:
      void next() {
        if (!queue_.empty()) {
          current_ = queue_.front();
          queue_.erase(queue_.begin());
          StartWrite(&current_);
        } else if (!hold_) {
          Finish(grpc::Status::OK);
        }
      }
      bool hold_;
      std::vector<pb::HealthUpdate> queue_;
      pb::HealthUpdate current_;
    };
    return new Reactor(health_calls++ == 0);
  }

  grpc::ServerUnaryReactor* ExecuteTask(grpc::CallbackServerContext* ctx, const pb::ExecuteTaskRequest* req,
                                        pb::ExecuteTaskResponse* resp) override {
    remember(ctx);
    resp->set_success(req->payload().count("fail") == 0);
    if (!resp->success()) resp->set_error("exit code 3");
    (*resp->mutable_result())["echo"] = req->task_id() + "/" + req->workload_class();
    (*resp->mutable_result())["timeout_seconds"] = std::to_string(req->timeout_seconds());
    resp->set_latency_ms(12.5);
    auto* r = ctx->DefaultReactor();
    r->Finish(req->task_id().empty() ? grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "task_id is required")
                                     : grpc::Status::OK);
    return r;
  }

 private:
  void remember(grpc::CallbackServerContext* ctx) {
    auto it = ctx->client_metadata().find("authorization");
    std::lock_guard lock(mu);
    last_authorization = it == ctx->client_metadata().end() ? "" : std::string(it->second.data(), it->second.size());
  }
};

struct Server {
  FakeEnvManager service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  Server() {
    grpc::ServerBuilder b;
    // A port below the ephemeral range, like every test port (tests/support/Process.h).
    b.AddListeningPort("127.0.0.1:" + std::to_string(dspy::test::freePort()), grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&service);
    server = b.BuildAndStart();
    REQUIRE(server != nullptr);
  }
  ~Server() { server->Shutdown(std::chrono::system_clock::now() + 2s); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

}  // namespace

TEST_CASE("the link turns ready and ensure_services retries until the stack is really up", "[envmanager-link]") {
  Server env;
  env.service.fail_starts = 2;
  dspy::FakeClock clock;  // the retry delays pass at once
  EnvManagerClient client({.address = env.address(), .token = "s3cret", .ensure_services = {"redis", "redb"}}, clock);
  CHECK(client.servicesState() == "waiting for env-manager");
  client.start(true);
  CHECK(eventually([&] { return client.linkReady(); }, 10s));
  REQUIRE(eventually([&] { return client.servicesState() == "ready: redis, redb"; }, 10s));
  // Two "failed" summaries were not taken for success; every failed call was followed by a
  // backoff on the client's clock (a transport error under load may add one more round).
  const int calls = env.service.start_calls;
  const auto sleeps = clock.sleeps();
  CAPTURE(calls, sleeps.size());
  CHECK(calls >= 3);
  CHECK(sleeps.size() == static_cast<size_t>(calls - 1));
  REQUIRE(sleeps.size() >= 2);
  CHECK((sleeps[0] >= 400ms && sleeps[0] <= 500ms));  // 500 ms, 1 s, less up to 20 % jitter
  CHECK((sleeps[1] >= 800ms && sleeps[1] <= 1000ms));
  std::lock_guard lock(env.service.mu);
  CHECK(env.service.started == std::vector<std::string>{"redis", "redb"});
  CHECK(env.service.last_authorization == "Bearer s3cret");
}

TEST_CASE("ExecuteTask goes to env-manager with the token and comes back as an outcome", "[envmanager-link]") {
  Server env;
  EnvManagerClient client({.address = env.address(), .token = "t0k"});
  client.start(true);
  auto ok = client.executeTask("task-1", "cpu", {{"command", "echo"}}, 2500ms, {});
  REQUIRE(ok.ok());
  CHECK(ok.value().success);
  CHECK(ok.value().result.at("echo") == "task-1/cpu");
  CHECK(ok.value().result.at("timeout_seconds") == "3");  // rounded up to whole seconds
  CHECK(ok.value().result.at("latency_ms") == "12.500000");
  auto failed = client.executeTask("task-2", "cpu", {{"fail", "1"}}, 1s, {});
  REQUIRE(failed.ok());
  CHECK_FALSE(failed.value().success);
  CHECK(failed.value().error == "exit code 3");
  auto bad = client.executeTask("", "cpu", {}, 1s, {});
  CHECK(bad.kind() == dspy::ErrorKind::InvalidArgument);
  std::lock_guard lock(env.service.mu);
  CHECK(env.service.last_authorization == "Bearer t0k");
}

TEST_CASE("an unused link is never dialled; an unreachable one says so", "[envmanager-link]") {
  EnvManagerClient unused({.address = "127.0.0.1:1"});
  unused.start(false);
  CHECK(unused.linkState() == "not used");
  const int port = dspy::test::freePort();  // nothing listens there
  EnvManagerClient client({.address = "127.0.0.1:" + std::to_string(port)});
  client.start(true);
  CHECK(eventually([&] { return client.linkState() == "unreachable"; }, 10s));
  CHECK_FALSE(client.linkReady());
  auto r = client.executeTask("t", "cpu", {}, 1s, {});
  CHECK(r.kind() == dspy::ErrorKind::Unavailable);
}

TEST_CASE("service health from env-manager's StreamHealth: first state and changes, across a reconnect",
          "[envmanager-link]") {
  Server env;
  dspy::FakeClock clock;  // the reconnect backoff passes at once
  std::mutex mu;
  std::vector<std::string> seen;
  EnvManagerClient client({.address = env.address()}, clock);
  client.setServiceListener([&](const std::string& service, bool healthy, const std::string& message) {
    std::lock_guard lock(mu);
    seen.push_back(service + (healthy ? " healthy " : " unhealthy ") + message);
  });
  client.start(true);
  REQUIRE(eventually([&] { return env.service.health_calls >= 2; }, 10s));
  client.stop();  // ends the held stream
  std::lock_guard lock(mu);
  // The repeated "healthy" and the unchanged state after the reconnect are not told again.
  CHECK(seen == std::vector<std::string>{"redis healthy PONG", "redis unhealthy no answer"});
}
