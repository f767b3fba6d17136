// HealthMonitor: the one source of health results and the one place that decides when
// to probe. During a start it probes fast (first after `first_probe_delay`, then 1.5x
// longer each time up to the service's interval; http/tcp/redis probes up to
// kCheapProbePace) until the service is healthy, its
// container exits, or the start's deadline passes; afterwards it probes the containers
// it is told to watch at their service's interval on the Clock. It keeps the latest
// result per service and hands every result to its listeners: Lifecycle reacts to them
// (unhealthy -> restart), StreamHealth forwards them. Nobody else probes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>

#include "common/Clock.h"
#include "env_manager/docker/DockerApi.h"
#include "env_manager/health/HealthProber.h"
#include "env_manager/services/ServiceSpec.h"

namespace dspy::envmanager {

// The slowest pace of a starting service's http, tcp and redis probes.
inline constexpr std::chrono::milliseconds kCheapProbePace{100};

struct ProbeReport {
  std::string service;
  std::string container_id;
  bool healthy = false;
  bool running = true;  // false: the container was not running when it was probed
  bool decided = false;  // a failure that counted its own retries (ProbeResult::decided)
  std::string message;
  double seconds = 0;            // how long the probe took
  std::int64_t checked_at = 0;   // unix seconds
};

class HealthMonitor {
 public:
  using Listener = std::function<void(const ProbeReport&)>;
  // Unsubscribes when destroyed.
  class Subscription {
   public:
    Subscription() = default;
    Subscription(HealthMonitor* monitor, std::list<Listener>::iterator it) : monitor_(monitor), it_(it) {}
    Subscription(Subscription&& o) noexcept : monitor_(std::exchange(o.monitor_, nullptr)), it_(o.it_) {}
    Subscription& operator=(Subscription&& o) noexcept;
    ~Subscription();

   private:
    HealthMonitor* monitor_ = nullptr;
    std::list<Listener>::iterator it_;
  };

  HealthMonitor(const ServicesFile& stack, docker::DockerApi& docker, HealthProber& prober, Clock& clock,
                std::chrono::milliseconds tick);
  ~HealthMonitor();

  // Starts / stops the thread that probes what is due every tick.
  void run();
  void shutdown();

  // Probes `container_id` at the service's interval from `first_probe` on, until
  // unwatch() or another watch() of the same service.
  void watch(const std::string& service, const std::string& container_id, Clock::MonotonicTime first_probe);
  void unwatch(const std::string& service);
  // Probes one container now and publishes the result.
  ProbeReport probeNow(const std::string& service, const docker::ContainerInfo& container);

  // How a start's wait for health ended.
  struct StartVerdict {
    enum class Kind {
      Healthy,        // a probe passed
      NoHealthCheck,  // the service has none: running is all there is to know
      Exited,         // the container stopped (`container` says how)
      InspectFailed,  // Docker could not say (`error`)
      TimedOut,       // the deadline passed; `last` is the last probe
      Cancelled,      // the start was cancelled
    };
    Kind kind = Kind::Cancelled;
    int attempts = 0;
    ProbeReport last;
    docker::ContainerInfo container;
    std::string error;
  };
  // Probes a starting container on the fast schedule until one of StartVerdict's ends;
  // `on_probe` sees every attempt's report (after it was published).
  StartVerdict awaitHealthy(const std::string& service, const std::string& container_id,
                            std::chrono::milliseconds first_probe_delay, Clock::MonotonicTime deadline,
                            std::stop_token stop, const std::function<void(int attempt, const ProbeReport&)>& on_probe);
  // Probes every watched container whose time has come, once (the thread calls it each
  // tick; tests may too). Returns how many it probed.
  int probeDue();

  Subscription subscribe(Listener listener);
  std::optional<ProbeReport> latest(const std::string& service) const;
  // Tells the subscribers at once that a service's container ended (a report with
  // running = false): health streams show it down without waiting for a probe.
  void reportExit(const std::string& service, const std::string& container_id, const std::string& message);

 private:
  struct Watched {
    std::string container_id;
    Clock::MonotonicTime next_probe;
  };
  void publish(const ProbeReport& report);

  const ServicesFile& stack_;
  docker::DockerApi& docker_;
  HealthProber& prober_;
  Clock& clock_;
  std::chrono::milliseconds tick_;

  mutable std::mutex mu_;
  std::map<std::string, Watched> watched_;
  std::map<std::string, ProbeReport> latest_;

  std::mutex listeners_mu_;  // held while listeners run: unsubscribing waits for them
  std::list<Listener> listeners_;

  std::stop_source stop_;
  std::jthread thread_;
};

}  // namespace dspy::envmanager
