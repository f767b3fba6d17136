// Lifecycle, the coordinator: brings the stack's containers up and down and keeps them
// running. Where each part lives:
// - start / stop / restart and the state table: Lifecycle.cc. Both walks are one
//   DependencyWalk (dependencies first for a start, dependents first for a stop) with
//   one cap on concurrent container operations; a service starts as soon as its own
//   dependencies meet their condition (started / healthy / completed); a dependency
//   that fails leaves its dependents "blocked" while independent services go on.
// - one service up (pull, create, start, first health verdict): ServiceStart.cc.
// - health: HealthMonitor decides when to probe (fast during a start, then at the
//   service's interval) and publishes; Lifecycle reacts to the results in Restarts.cc.
// - restarts: Docker's event stream tells of a dead or OOM-killed container at once;
//   the restart policy restarts it with exponential backoff and gives up after
//   max_restarts in a row ("crash_loop"): Restarts.cc.
// - adoption: containers are found by label (project, service, definition hash), never
//   by name; a restarted env-manager adopts them, a changed definition is recreated:
//   Adoption.cc.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/Backoff.h"
#include "common/Clock.h"
#include "env_manager/docker/DockerApi.h"
#include "env_manager/health/HealthProber.h"
#include "env_manager/lifecycle/DependencyWalk.h"
#include "env_manager/lifecycle/HealthMonitor.h"
#include "env_manager/lifecycle/ServiceGraph.h"
#include "env_manager/lifecycle/ServiceState.h"
#include "env_manager/services/ServiceSpec.h"

namespace dspy::envmanager {

// Labels every managed container carries.
inline constexpr const char* kLabelManaged = "dev.dspy-agent.managed";
inline constexpr const char* kLabelProject = "dev.dspy-agent.project";
inline constexpr const char* kLabelService = "dev.dspy-agent.service";
inline constexpr const char* kLabelHash = "dev.dspy-agent.definition-hash";

struct LifecycleUpdate {
  std::string service;  // empty for the closing summary of a start
  std::string status;   // pending, pulling, creating, starting, waiting, healthy, running,
                        // failed, blocked, completed, ...
  std::string message;
  int progress = 0;     // 0-100
};

// When the last start that created or started the service's container did each step
// (unix milliseconds; 0 = not reached). A start that found the service up leaves it.
struct StartTimeline {
  std::int64_t requested_ms = 0;    // the start asked for it (waits for dependencies)
  std::int64_t created_ms = 0;      // container create called (0: an existing one started)
  std::int64_t started_ms = 0;      // container start called
  std::int64_t first_probe_ms = 0;  // first health probe answered
  std::int64_t ready_ms = 0;        // healthy (first passing probe), running or completed
  std::string outcome;              // healthy, running, completed, failed, ... ("" while starting)
};

struct ServiceView {
  std::string name;
  ServiceState status = ServiceState::Stopped;
  std::string message;
  std::string container_id;
  std::vector<int> ports;  // published host ports
  std::map<std::string, std::string> health;  // kind, status, message, checked_at, failures
  std::int64_t started_at = 0;
  int restarts = 0;
  bool required = true;
  StartTimeline timeline;
};

struct StartOutcome {
  bool success = false;  // every required service in the closure is healthy or running
  std::map<std::string, ServiceState> results;  // service -> final state
};

// Observes what the lifecycle does, for metrics. Every hook may be called from any thread.
struct LifecycleObserver {
  std::function<void(const std::string& service, const std::string& outcome)> on_start;
  std::function<void(const std::string& service, const std::string& reason)> on_start_failed;
  std::function<void(const std::string& service, const std::string& outcome)> on_stop;
  std::function<void(const std::string& service, const std::string& reason)> on_restart;
  std::function<void(const std::string& service, bool healthy, double seconds)> on_probe;
};

class Lifecycle {
 public:
  struct Options {
    int max_concurrent = 4;                         // container operations at once
    std::chrono::milliseconds health_timeout{120'000};  // start -> healthy, per service
    std::chrono::milliseconds first_probe_delay{25};
    std::chrono::milliseconds monitor_tick{250};
    bool gpus_present = false;                      // honour `gpus: true` only when true
  };

  Lifecycle(ServicesFile stack, docker::DockerApi& docker, HealthProber& prober, Clock& clock, Options options,
            LifecycleObserver observer = {});
  ~Lifecycle();
  Lifecycle(const Lifecycle&) = delete;
  Lifecycle& operator=(const Lifecycle&) = delete;

  // Adopts existing containers, then starts the event watcher and health monitor.
  void run();
  // Stops the background threads (containers keep running).
  void shutdown();

  // Blocks until every service of the closure is healthy, running, failed or blocked.
  // `on_update` sees each step as it happens. An unknown name is InvalidArgument.
  Result<StartOutcome> start(const std::vector<std::string>& names, const std::function<void(const LifecycleUpdate&)>& on_update,
                             std::stop_token stop = {});
  // Stops `names` and everything that depends on them, dependents first.
  // timeout_seconds <= 0 uses each service's stop_grace_period.
  Result<std::map<std::string, std::string>> stop(const std::vector<std::string>& names, int timeout_seconds);
  Result<std::string> restart(const std::string& name, int timeout_seconds);
  std::vector<ServiceView> status(const std::vector<std::string>& names) const;

  const ServicesFile& stack() const { return stack_; }
  const ServiceGraph& graph() const { return graph_; }
  bool dockerReachable() const { return docker_up_.load(); }
  // The current container of a service, or "" (for logs).
  std::string containerOf(const std::string& name) const;
  // Services whose state counts as up (healthy or running without a health check).
  int activeServices() const;

  // One Docker event (the watcher thread calls it; tests may too).
  void onDockerEvent(const docker::Event& event);
  // The health results' one source (StreamHealth subscribes to it).
  HealthMonitor& health() { return monitor_; }
  // Probes every running service whose interval has passed, once (the monitor thread
  // calls it every tick; tests may too). Returns how many were probed.
  int probeDue() { return monitor_.probeDue(); }
  // Waits for restarts scheduled so far to finish (tests).
  void waitForRestarts();

 private:
  struct Runtime;
  enum class Phase { Idle, Starting, Up, Stopping };

  Runtime& rt(const std::string& name);
  const Runtime& rt(const std::string& name) const;
  void setState(const std::string& name, ServiceState status, const std::string& message);
  bool dependencySatisfied(const DependencySpec& dep, std::string* blocked_reason) const;

  // One service's start: container up, then health. Returns the final state.
  ServiceState startOne(const std::string& name, const std::function<void(const LifecycleUpdate&)>& emit,
                       std::stop_token stop, DependencyWalk::Step& step);
  Status ensureContainer(const ServiceSpec& spec, const std::function<void(const LifecycleUpdate&)>& emit,
                         std::stop_token stop);
  ServiceState waitHealthy(const ServiceSpec& spec, const std::function<void(const LifecycleUpdate&)>& emit,
                          std::stop_token stop);
  docker::CreateRequest createRequest(const ServiceSpec& spec) const;
  void adopt();
  void watchEvents(std::stop_token stop);
  void onProbe(const ProbeReport& report);
  void onContainerExit(const std::string& name, const std::string& container_id, int exit_code, bool oom);
  void scheduleRestart(const std::string& name, const std::string& reason);
  void reconcile();

  ServicesFile stack_;
  ServiceGraph graph_;
  docker::DockerApi& docker_;
  HealthProber& prober_;
  Clock& clock_;
  Options options_;
  LifecycleObserver observer_;
  DependencyWalk walk_;
  HealthMonitor monitor_;
  HealthMonitor::Subscription health_subscription_;

  mutable std::mutex mu_;
  std::condition_variable_any changed_;
  std::map<std::string, std::unique_ptr<Runtime>> runtimes_;
  std::atomic<bool> docker_up_{false};

  std::stop_source background_;
  std::vector<std::jthread> threads_;
  std::mutex resources_mu_;  // network and volume creation
  std::mutex restart_mu_;
  std::vector<std::jthread> restarters_;
};

}  // namespace dspy::envmanager
