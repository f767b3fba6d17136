// HealthMonitor: the one source of health results. It probes the containers it is told
// to watch, each at its service's interval on the Clock, probes once on request (the
// fast probes of a start), keeps the latest result per service and hands every result
// to its listeners: Lifecycle reacts to them (unhealthy -> restart), StreamHealth
// forwards them. Nobody else probes.
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

struct ProbeReport {
  std::string service;
  std::string container_id;
  bool healthy = false;
  bool running = true;  // false: the container was not running when it was probed
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
  // Probes every watched container whose time has come, once (the thread calls it each
  // tick; tests may too). Returns how many it probed.
  int probeDue();

  Subscription subscribe(Listener listener);
  std::optional<ProbeReport> latest(const std::string& service) const;

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
