// EnvManagerClient: the orchestrator's link to env-manager over gRPC. It watches the
// channel's connectivity (gRPC reconnects with backoff by itself), reports the link in
// health, runs ExecuteTask for the `container` executor, and, when config lists
// `ensure_services`, asks env-manager to bring them up once the link is up and again
// (with backoff) until that succeeded. With a service listener it follows env-manager's
// StreamHealth (reconnecting with backoff) and reports each service's health when it is
// first seen and whenever it changes (the orchestrator turns these into events).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/Backoff.h"
#include "common/Clock.h"
#include "common/Payload.h"
#include "common/Result.h"

namespace dspy::orchestrator {

struct EnvManagerLinkConfig {
  std::string address = "127.0.0.1:50100";
  std::string token;    // bearer token env-manager expects, if any
  std::string ca_file;  // TLS to env-manager when set
  std::vector<std::string> ensure_services;
};

struct ContainerOutcome {
  bool success = false;
  Payload result;
  std::string error;
};

// One service as GetServicesStatus reports it (for the web page).
struct ServiceSnapshot {
  std::string name;
  std::string status;  // the contract's word: running, starting, unhealthy, stopped, failed
  std::string container_id;
  std::vector<int> ports;
  std::map<std::string, std::string> health;  // health_checks: state, state_message, kind, ...
  std::int64_t started_at = 0;                // unix seconds
  double cpu_percent = 0;
  std::int64_t memory_bytes = 0;
  // The last start's steps, unix ms (0 = not reached) and outcome.
  std::int64_t requested_ms = 0, created_ms = 0, start_called_ms = 0, first_probe_ms = 0, ready_ms = 0;
  std::string outcome;
};

class EnvManagerClient {
 public:
  // `clock` times the ensure_services retries.
  explicit EnvManagerClient(EnvManagerLinkConfig cfg, Clock& clock = Clock::real());
  ~EnvManagerClient();

  // Starts the connectivity watcher and the ensure_services worker. `needed` says
  // whether anything uses env-manager (a container class or ensure_services); when
  // nothing does, the link is reported as "not used" and never dialled.
  void start(bool needed);
  void stop();

  using ServiceListener = std::function<void(const std::string& service, bool healthy, const std::string& message)>;
  // Set before start(); called on the client's own thread.
  void setServiceListener(ServiceListener fn) { service_listener_ = std::move(fn); }

  // "ready", "connecting", "unreachable: ...", plus the ensure_services state.
  std::string linkState() const;
  bool linkReady() const;
  std::string servicesState() const;
  // GPUs env-manager reported (GetResourceAvailability), refreshed every 30 s while the
  // link is ready; 0 before the first answer or when the link is not used.
  int gpuCount() const;

  // Asks env-manager to start `services` (and what they depend on) and waits for its
  // verdict: Ok only when its closing summary says every required service is up.
  Status startServices(const std::vector<std::string>& services, std::stop_token stop);

  // GetServicesStatus of every service, within `timeout`.
  Result<std::vector<ServiceSnapshot>> servicesStatus(std::chrono::milliseconds timeout);
  // Follows env-manager's health stream (service listener) from now on, also when
  // start() found nothing using env-manager (the web page asks for it).
  void followServices();

  Result<ContainerOutcome> executeTask(const std::string& task_id, const std::string& workload_class,
                                       const Payload& payload, std::chrono::milliseconds timeout,
                                       std::stop_token cancel);

 private:
  void watch(std::stop_token stop);
  void ensure(std::stop_token stop);
  void followHealth(std::stop_token stop);
  void addAuth(grpc::ClientContext& ctx) const;
  void refreshHardware();

  EnvManagerLinkConfig cfg_;
  Clock& clock_;
  std::shared_ptr<grpc::Channel> channel_;
  mutable std::mutex mu_;
  std::string link_ = "not used";
  std::string services_;
  int gpus_ = 0;
  bool stopped_ = false;
  ServiceListener service_listener_;
  std::jthread watcher_;
  std::jthread ensurer_;
  std::jthread health_follower_;
};

}  // namespace dspy::orchestrator
