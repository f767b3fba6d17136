// ServiceSpec: one backing service as the operator defines it (compose-like YAML), and
// ServicesFile, the whole stack. Parsing validates everything and names file, line and
// problem: unknown key, bad type, unknown dependency, dependency cycle, duplicate port.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
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
  // Docker's own HEALTHCHECK for the container, as compose sets it (["CMD", ...],
  // ["CMD-SHELL", "..."] or ["NONE"]); empty = the image's. env-manager still probes by
  // `kind`; this only makes `docker ps` and `docker inspect` show what the file asked.
  std::vector<std::string> container_test;
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
  std::string host_ip = "127.0.0.1";  // "" = every interface (compose's default)
  int host_port = 0;                  // 0 = not published, unless random_host_port
  int container_port = 0;
  std::string protocol = "tcp";
  bool random_host_port = false;      // published on a port Docker picks
  bool published() const { return host_port > 0 || random_host_port; }
};

struct VolumeSpec {
  std::string source;  // named volume, an absolute host path (bind), or "" (anonymous volume)
  std::string target;
  bool read_only = false;
  bool tmpfs = false;  // a tmpfs at `target` (no source)
  bool create_host_path = false;  // bind: make the host folder when it is missing
  bool bind() const { return !source.empty() && source[0] == '/'; }
};

// A Docker network the container joins, with extra DNS names on it.
struct NetworkSpec {
  std::string name;  // the Docker network's name
  std::vector<std::string> aliases;
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
  int gpu_count = -1;                     // with gpus: -1 = all
  std::vector<std::string> gpu_device_ids;  // with gpus: these devices instead of a count
  std::int64_t pids_limit = 0;
  std::chrono::seconds stop_grace_period{10};
  std::string working_dir;
  std::string user;
  std::string hostname;
  std::string container_name;  // empty = <project>-<name>
  // Networks joined (the first is the primary); empty = the stack's `network` only.
  std::vector<NetworkSpec> networks;

  // A hash of everything that shapes the container; a change means "recreate".
  std::string definitionHash(const std::string& network) const;
  // Host port that publishes `container_port`, or 0.
  int hostPortFor(int container_port) const;
  // The networks joined: `networks`, or the stack's network alone (the service's name is
  // an alias on each besides the aliases listed).
  std::vector<NetworkSpec> joinedNetworks(const std::string& stack_network) const;
};

struct ServicesFile {
  std::string network = "dspy-agent";  // user-defined bridge every service joins
  std::string project = "dspy-agent";  // container name prefix and label value
  std::vector<ServiceSpec> services;   // in file order
  std::string format = "native";       // what it was read from: native or compose
  std::vector<std::string> warnings;   // what was ignored on purpose (compose: unsupported keys)

  const ServiceSpec* find(const std::string& name) const;
  std::vector<std::string> names() const;
};

// How a services file is read.
struct ServicesLoadOptions {
  enum class Format { Auto, Native, Compose };
  Format format = Format::Auto;
  // Compose only: profiles to enable besides COMPOSE_PROFILES, the project name
  // (empty = the file's `name`, COMPOSE_PROJECT_NAME, or its folder's name), and whether
  // a key env-manager does not support is a warning (true) or an error (false).
  std::vector<std::string> profiles;
  std::string project;
  bool unsupported_as_warnings = false;
  // Variables for ${VAR} interpolation; unset = the process environment. The .env file
  // beside a compose file fills in what this does not have.
  std::function<std::optional<std::string>(const std::string&)> env;
};

// Parses and validates a services file; `label` names it in messages.
Result<ServicesFile> parseServices(const std::string& text, const std::string& label);
// A Compose Specification file (docker-compose.yml) as a services file; `dir` is the
// folder relative paths (binds, env_file, .env) are taken from.
Result<ServicesFile> parseCompose(const std::string& text, const std::string& label, const std::string& dir,
                                  const ServicesLoadOptions& options);
// Reads `path` as our format or compose (Format::Auto: compose when the file is named like
// one, compose.yaml / docker-compose*.yml / *.compose.yml, or has compose's top-level keys).
Result<ServicesFile> loadServicesFile(const std::string& path, const ServicesLoadOptions& options = {});
// Checks across services (dependency cycle, host ports published twice, container names
// used twice, no services); one message per problem, `label` naming the file.
std::vector<std::string> stackErrors(const ServicesFile& file, const std::string& label);
// Our own YAML for a services file; parseServices() of it gives the same stack.
std::string toNativeYaml(const ServicesFile& file);
// The built-in default: the nine services (deploy/config/services.yaml).
const std::string& defaultServicesYaml();

std::string toString(HealthCheckSpec::Kind kind);
std::string toString(DependencySpec::Condition condition);

// "1s", "250ms", "2m", "1h" or a plain number of seconds.
Result<std::chrono::milliseconds> parseDuration(const std::string& text);
// "512m", "1g", "64k" (binary units) or a plain number of bytes.
Result<std::int64_t> parseByteSize(const std::string& text);

}  // namespace dspy::envmanager
