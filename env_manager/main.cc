// env-manager: owns the Docker lifecycle of the backing services (gRPC 50100, HTTP 50101).
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "common/DaemonRuntime.h"
#include "env_manager/EnvManagerConfig.h"
#include "env_manager/api/EnvManagerService.h"
#include "env_manager/docker/DockerClient.h"

namespace {

using namespace dspy;
using namespace dspy::envmanager;

// Everything the daemon owns, kept alive by the runtime until it has stopped.
struct EnvManagerApp {
  std::unique_ptr<docker::DockerClient> docker;
  std::unique_ptr<RealHealthProber> prober;
  std::unique_ptr<Lifecycle> lifecycle;
  std::unique_ptr<TaskRunner> tasks;
  std::unique_ptr<EnvManagerService> service;
  std::jthread autostart;

  ~EnvManagerApp() {
    autostart = {};
    if (lifecycle) lifecycle->shutdown();
  }
};

Result<std::shared_ptr<void>> setup(DaemonRuntime& runtime, const EnvManagerConfig& cfg) {
  auto app = std::make_shared<EnvManagerApp>();
  auto& reg = runtime.metrics().registry();
  auto& docker_latency = prometheus::BuildHistogram()
                             .Name("env_manager_docker_api_duration_seconds")
                             .Help("Docker Engine API call latency by operation and outcome")
                             .Register(reg);
  auto& starts = prometheus::BuildCounter()
                     .Name("env_manager_service_start_total")
                     .Help("Service starts by outcome (success, failed, blocked, ...)")
                     .Register(reg);
  auto& stops = prometheus::BuildCounter().Name("env_manager_service_stop_total").Help("Service stops by outcome").Register(reg);
  auto& failed = prometheus::BuildCounter()
                     .Name("env_manager_failed_service_starts_total")
                     .Help("Failed service starts by reason")
                     .Register(reg);
  auto& restarts = prometheus::BuildCounter()
                       .Name("env_manager_service_restarts_total")
                       .Help("Restarts by reason (exited, unhealthy, requested, crash_loop)")
                       .Register(reg);
  auto& probe_latency = prometheus::BuildHistogram()
                            .Name("env_manager_service_health_check_duration_seconds")
                            .Help("Health probe latency by service and result")
                            .Register(reg);
  auto& active = prometheus::BuildGauge()
                     .Name("env_manager_active_services")
                     .Help("Services that are healthy or running")
                     .Register(reg)
                     .Add({});
  auto& docker_up = prometheus::BuildGauge()
                        .Name("env_manager_docker_up")
                        .Help("1 when the Docker Engine answers")
                        .Register(reg)
                        .Add({});
  const prometheus::Histogram::BucketBoundaries fast{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

  auto docker = docker::DockerClient::create(
      {.host = cfg.docker_host,
       .timeout = std::chrono::seconds(cfg.docker_timeout_seconds),
       .observer = [docker_latency = &docker_latency, fast](std::string_view op, bool ok, double s) {
         docker_latency->Add({{"operation", std::string(op)}, {"status", ok ? "success" : "error"}}, fast).Observe(s);
       }});
  if (!docker) return Error{docker.error()};
  app->docker = std::move(docker).value();

  auto stack = cfg.services_file.empty() ? parseServices(defaultServicesYaml(), "built-in services.yaml")
                                         : loadServicesFile(cfg.services_file);
  if (!stack) return Error{stack.error()};

  LifecycleObserver observer{
      .on_start = [starts = &starts](const std::string& s, const std::string& outcome) {
        starts->Add({{"service_name", s}, {"status", outcome}}).Increment();
      },
      .on_start_failed = [failed = &failed](const std::string& s, const std::string& reason) {
        failed->Add({{"service_name", s}, {"reason", reason}}).Increment();
      },
      .on_stop = [stops = &stops](const std::string& s, const std::string& outcome) {
        stops->Add({{"service_name", s}, {"status", outcome}}).Increment();
      },
      .on_restart = [restarts = &restarts](const std::string& s, const std::string& reason) {
        restarts->Add({{"service_name", s}, {"reason", reason}}).Increment();
      },
      .on_probe = [probe_latency = &probe_latency, fast](const std::string& s, bool healthy, double seconds) {
        probe_latency->Add({{"service_name", s}, {"status", healthy ? "healthy" : "unhealthy"}}, fast).Observe(seconds);
      },
  };
  app->prober = std::make_unique<RealHealthProber>(*app->docker);
  const bool gpus = !detectHardware().gpus.empty();
  app->lifecycle = std::make_unique<Lifecycle>(
      std::move(stack).value(), *app->docker, *app->prober, Clock::real(),
      Lifecycle::Options{.max_concurrent = cfg.max_concurrent,
                         .health_timeout = std::chrono::seconds(cfg.health_timeout_seconds),
                         .gpus_present = gpus},
      observer);
  app->tasks = std::make_unique<TaskRunner>(*app->docker, cfg.tasks, app->lifecycle->stack().project);
  app->service = std::make_unique<EnvManagerService>(*app->lifecycle, *app->tasks, *app->docker);
  runtime.grpc().addService(app->service.get());
  app->lifecycle->run();

  Lifecycle* lc = app->lifecycle.get();
  runtime.metrics().addScrapeHook([lc, active = &active, docker_up = &docker_up] {
    active->Set(lc->activeServices());
    docker_up->Set(lc->dockerReachable() ? 1 : 0);
  });
  docker::DockerClient* dc = app->docker.get();
  // The old env-manager answered {"status":"healthy","service":"env-manager",...}; a
  // required service that is down does not make env-manager itself unhealthy.
  runtime.setHealthWording({.ok = "healthy", .degraded = "healthy", .down = "unhealthy"});
  runtime.setHealthReporter([lc, dc]() {
    HealthReport h;
    auto ping = dc->ping();
    h.components["docker"] = ping ? "reachable at " + dc->host() + " (API " + ping.value().substr(2) + ")"
                                   : "unreachable: " + ping.error();
    int up = 0;
    int total = 0;
    std::string bad;
    for (const auto& v : lc->status({})) {
      ++total;
      if (isUp(v.status)) ++up;
      if (v.required && (isDead(v.status) || v.status == ServiceState::Unhealthy)) {
        bad += (bad.empty() ? "" : ", ") + v.name + " " + std::string(name(v.status));
      }
    }
    h.components["services"] = std::to_string(up) + "/" + std::to_string(total) + " up";
    if (!bad.empty()) h.components["required_services_down"] = bad;
    h.status = !ping ? "down" : (bad.empty() ? "ok" : "degraded");
    return h;
  });
  if (!cfg.autostart.empty()) {
    app->autostart = std::jthread([lc, names = cfg.autostart](std::stop_token stop) {
      spdlog::info("autostart: starting {} service(s) and their dependencies", names.size());
      auto out = lc->start(names, [](const LifecycleUpdate& u) {
        if (!u.service.empty()) spdlog::info("autostart: {} {}: {}", u.service, u.status, u.message);
      }, stop);
      if (!out) spdlog::error("autostart: {}", out.error());
      else spdlog::info("autostart finished: {}", out.value().success ? "all required services up" : "some failed");
    });
  }
  return std::shared_ptr<void>(app);
}

}  // namespace

int main(int argc, char** argv) {
  dspy::DaemonSpec<EnvManagerConfig> spec{
      .info = {"env-manager", "ENV_MANAGER_CONFIG", "/etc/dspy-agent/env-manager.yaml",
               "Docker lifecycle manager for the dspy-agent backing services"},
      .load = dspy::envmanager::loadConfig,
      .setup = setup,
  };
  return dspy::runDaemon(argc, argv, spec);
}
