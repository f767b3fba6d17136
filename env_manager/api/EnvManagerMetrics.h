// EnvManagerMetrics: env-manager's Prometheus series (the contract's names), fed by the
// lifecycle's and the Docker client's observer hooks and, at scrape time, by the
// lifecycle's state. Also the daemon's /health report.
#pragma once

#include <functional>
#include <string_view>

#include "common/DaemonRuntime.h"
#include "common/Metrics.h"
#include "env_manager/docker/DockerClient.h"
#include "env_manager/lifecycle/Lifecycle.h"

namespace dspy::envmanager {

class EnvManagerMetrics {
 public:
  explicit EnvManagerMetrics(Metrics& metrics);
  // For DockerClient::Options::observer: API call latency by operation and outcome.
  std::function<void(std::string_view, bool, double)> dockerObserver();
  LifecycleObserver lifecycleObserver();
  // Sets the gauges (active services, Docker reachable) from `lifecycle` at every scrape.
  void attach(const Lifecycle& lifecycle);

 private:
  struct Families;
  Metrics& metrics_;
  std::shared_ptr<Families> f_;
};

// GET /health: Docker reachable, services up, required services that are down.
HealthReport envManagerHealth(const Lifecycle& lifecycle, docker::DockerClient& docker);

}  // namespace dspy::envmanager
