// ServiceSpec: one backing service as the operator defines it (compose-like YAML), and
// ServicesFile, the whole stack. Parsing validates everything and names file, line and
// problem: unknown key, bad type, unknown dependency, dependency cycle, duplicate port.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/Result.h"

namespace dspy::envmanager {

struct HealthCheckSpec {
  enum class Kind { None, Http, Tcp, Redis, Exec, Docker };
  Kind kind = Kind::None;
  int port = 0;                       // container port probed (http, tcp, redis)
  std::string path = "/";             // http
  std::vector<std::string> command;   // exec: run inside the container, exit 0 = healthy
  std::chrono::milliseconds interval{5000};
  std::chrono::milliseconds timeout{2000};
  std::chrono::milliseconds start_period{0};
  int retries = 3;
};

struct RestartSpec {
  enum class Policy { No, OnFailure, Always, UnlessStopped };
  Policy policy = Policy::OnFailure;
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{30'000};
  // A service that ran this long since its last restart gets its backoff reset.
  std::chrono::milliseconds reset_after{60'000};
  // Restarts in a row (without a reset) before the service is declared crash-looping.
  int max_restarts = 5;
  bool on_unhealthy = true;
};

struct PortSpec {
  std::string host_ip = "127.0.0.1";
  int host_port = 0;
  int container_port = 0;
  std::string protocol = "tcp";
};

struct VolumeSpec {
  std::string source;  // named volume, or an absolute host path (bind)
  std::string target;
  bool read_only = false;
  bool bind() const { return !source.empty() && source[0] == '/'; }
};

struct DependencySpec {
  enum class Condition { Started, Healthy, CompletedSuccessfully };
  std::string service;
  Condition condition = Condition::Started;
};

struct ServiceSpec {
  std::string name;
  std::string image;
  std::vector<std::string> command;
  std::vector<std::string> entrypoint;
  std::map<std::string, std::string> environment;
  std::vector<PortSpec> ports;
  std::vector<VolumeSpec> volumes;
  std::vector<DependencySpec> depends_on;
  HealthCheckSpec healthcheck;
  RestartSpec restart;
  bool required = true;
  std::map<std::string, std::string> labels;
  double cpus = 0;
  std::int64_t memory_bytes = 0;
  bool gpus = false;
  std::chrono::seconds stop_grace_period{10};

  // A hash of everything that shapes the container; a change means "recreate".
  std::string definitionHash(const std::string& network) const;
  // Host port that publishes `container_port`, or 0.
  int hostPortFor(int container_port) const;
};

struct ServicesFile {
  std::string network = "dspy-agent";  // user-defined bridge every service joins
  std::string project = "dspy-agent";  // container name prefix and label value
  std::vector<ServiceSpec> services;   // in file order

  const ServiceSpec* find(const std::string& name) const;
  std::vector<std::string> names() const;
};

// Parses and validates a services file; `label` names it in messages.
Result<ServicesFile> parseServices(const std::string& text, const std::string& label);
Result<ServicesFile> loadServicesFile(const std::string& path);
// The built-in default: the nine services (deploy/config/services.yaml).
const std::string& defaultServicesYaml();

std::string toString(HealthCheckSpec::Kind kind);
std::string toString(DependencySpec::Condition condition);

// "1s", "250ms", "2m", "1h" or a plain number of seconds.
Result<std::chrono::milliseconds> parseDuration(const std::string& text);
// "512m", "1g", "64k" (binary units) or a plain number of bytes.
Result<std::int64_t> parseByteSize(const std::string& text);

}  // namespace dspy::envmanager
