// EnvManagerConfig: everything env-manager reads from its YAML file and environment.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/ConfigSchema.h"
#include "common/Result.h"
#include "common/ServerConfig.h"
#include "env_manager/services/ServiceSpec.h"

namespace dspy::envmanager {

// One workload class of ExecuteTask containers.
struct TaskClassConfig {
  int capacity = 2;               // task containers of this class at once
  double cpus = 1.0;              // per container
  std::int64_t memory_bytes = 512LL * 1024 * 1024;
  int timeout_seconds = 300;      // default when the request gives none; also the cap
  bool network = false;           // false = no network at all
  bool gpus = false;
};

// A command ExecuteTask may run: an image and an argv, optionally extended by the
// request's "args" (a JSON list of strings).
struct TaskCommandConfig {
  std::string image;
  std::vector<std::string> argv;
  bool allow_args = false;
};

struct TasksConfig {
  std::map<std::string, TaskClassConfig> classes;
  std::map<std::string, TaskCommandConfig> commands;
  int output_tail_bytes = 4096;
};

struct EnvManagerConfig {
  ServerConfig server = ServerConfig::withAddresses("127.0.0.1:50100", "127.0.0.1:50101");
  std::string docker_host = "unix:///var/run/docker.sock";
  int docker_timeout_seconds = 30;
  std::string services_file;             // empty = the built-in default stack
  std::string services_format = "auto";  // auto, native or compose
  std::vector<std::string> compose_profiles;  // compose profiles enabled (besides COMPOSE_PROFILES)
  std::string compose_project;           // compose project name override
  std::string compose_unsupported = "error";  // error or warn: a compose key env-manager lacks
  std::vector<std::string> autostart;    // started (with their dependencies) at boot
  int max_concurrent = 4;
  int health_timeout_seconds = 120;
  TasksConfig tasks;

  EnvManagerConfig();
  ServicesLoadOptions servicesLoadOptions() const;
  // The stack: services.file read as configured, or the built-in default.
  Result<ServicesFile> loadStack() const;
};

// Describes every key; exposed so `dspy-agent config keys` and tests can list them.
// A relative services.file is taken relative to `base_dir` (the config file's folder).
void describe(config::Schema& schema, EnvManagerConfig& cfg, const std::string& base_dir = "");
Result<EnvManagerConfig> loadConfig(const std::string& file, const config::EnvLookup& env);

}  // namespace dspy::envmanager
