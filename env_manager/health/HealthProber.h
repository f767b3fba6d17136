// HealthProber: one health probe of a running service. The real prober runs HTTP, TCP
// and Redis probes from env-manager itself (no process inside the container), and exec
// or Docker-health probes through the Engine API.
#pragma once

#include <chrono>
#include <string>

#include "env_manager/docker/DockerApi.h"
#include "env_manager/services/ServiceSpec.h"

namespace dspy::envmanager {

struct ProbeResult {
  bool healthy = false;
  std::string message;
  double seconds = 0;
  // A failure that already counted its retries (Docker's own "unhealthy"): the monitor
  // takes it as final instead of counting retries again.
  bool decided = false;
};

class HealthProber {
 public:
  virtual ~HealthProber() = default;
  virtual ProbeResult probe(const ServiceSpec& spec, const docker::ContainerInfo& container,
                            const std::string& network) = 0;
};

class RealHealthProber final : public HealthProber {
 public:
  explicit RealHealthProber(docker::DockerApi& docker) : docker_(docker) {}
  ProbeResult probe(const ServiceSpec& spec, const docker::ContainerInfo& container,
                    const std::string& network) override;

 private:
  docker::DockerApi& docker_;
};

// Where a probe connects: the published host port on loopback when there is one,
// else the container's address on the stack's network. Empty host when neither exists.
struct ProbeTarget {
  std::string host;
  int port = 0;
};
ProbeTarget probeTarget(const ServiceSpec& spec, const docker::ContainerInfo& container, const std::string& network);

// The individual probes, usable on their own (and tested against real listeners).
ProbeResult probeTcp(const std::string& host, int port, std::chrono::milliseconds timeout);
ProbeResult probeHttp(const std::string& host, int port, const std::string& path, std::chrono::milliseconds timeout);
ProbeResult probeRedis(const std::string& host, int port, std::chrono::milliseconds timeout);

}  // namespace dspy::envmanager
