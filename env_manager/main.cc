// env-manager: owns the Docker lifecycle of the backing services (gRPC 50100, HTTP 50101).
#include <spdlog/spdlog.h>

#include <thread>

#include "common/DaemonRuntime.h"
#include "env_manager/EnvManagerConfig.h"
#include "env_manager/api/EnvManagerMetrics.h"
#include "env_manager/api/EnvManagerService.h"
#include "env_manager/docker/DockerClient.h"

namespace {

using namespace dspy;
using namespace dspy::envmanager;

// Everything the daemon owns, kept alive by the runtime until it has stopped.
struct EnvManagerApp {
  std::shared_ptr<EnvManagerMetrics> metrics;
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
  auto metrics = std::make_shared<EnvManagerMetrics>(runtime.metrics());
  auto docker = docker::DockerClient::create(
      {.host = cfg.docker_host,
       .timeout = std::chrono::seconds(cfg.docker_timeout_seconds),
       .observer = metrics->dockerObserver()});
  if (!docker) return Error{docker.error()};
  app->docker = std::move(docker).value();

  auto stack = cfg.loadStack();
  if (!stack) return Error{stack.error()};
  for (const auto& w : stack.value().warnings) spdlog::warn("services file: {}", w);
  if (stack.value().format == "compose") {
    spdlog::info("services file {} read as a compose file: project {}, {} service(s)", cfg.services_file,
                 stack.value().project, stack.value().services.size());
  }

  app->prober = std::make_unique<RealHealthProber>(*app->docker);
  const bool gpus = !detectHardware().gpus.empty();
  app->lifecycle = std::make_unique<Lifecycle>(
      std::move(stack).value(), *app->docker, *app->prober, Clock::real(),
      Lifecycle::Options{.max_concurrent = cfg.max_concurrent,
                         .health_timeout = std::chrono::seconds(cfg.health_timeout_seconds),
                         .gpus_present = gpus},
      metrics->lifecycleObserver());
  app->tasks = std::make_unique<TaskRunner>(*app->docker, cfg.tasks, app->lifecycle->stack().project);
  if (auto left = app->tasks->removeLeftovers(); !left) {
    spdlog::warn("task containers of an earlier run not checked: {}", left.error());
  } else if (left.value() > 0) {
    spdlog::warn("removed {} task container(s) an earlier env-manager left running or stopped", left.value());
  }
  app->service = std::make_unique<EnvManagerService>(*app->lifecycle, *app->tasks, *app->docker);
  runtime.grpc().addService(app->service.get());
  app->lifecycle->run();

  metrics->attach(*app->lifecycle);
  app->metrics = metrics;
  Lifecycle* lc = app->lifecycle.get();
  docker::DockerClient* dc = app->docker.get();
  // The old env-manager answered {"status":"healthy","service":"env-manager",...}.
  runtime.setHealthWording({.ok = "healthy", .degraded = "healthy", .down = "unhealthy"});
  runtime.setHealthReporter([lc, dc] { return envManagerHealth(*lc, *dc); });
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
