// env-manager config keys and the environment variables operators already use.
#include "env_manager/EnvManagerConfig.h"

#include <yaml-cpp/yaml.h>

#include "env_manager/services/ServiceSpec.h"

namespace dspy::envmanager {

EnvManagerConfig::EnvManagerConfig() {
  tasks.classes["cpu_short"] = TaskClassConfig{.capacity = 4, .timeout_seconds = 60};
  tasks.classes["cpu_long"] = TaskClassConfig{.capacity = 2, .timeout_seconds = 3600};
  tasks.classes["gpu"] = TaskClassConfig{.capacity = 1, .timeout_seconds = 3600, .gpus = true};
}

namespace {

Status parseClasses(const YAML::Node& n, const std::string& file, const std::string& path, TasksConfig* tasks) {
  if (!n.IsMap()) return Error{config::locate(file, n, "key '" + path + "': expected a mapping of class name to settings")};
  tasks->classes.clear();
  for (const auto& kv : n) {
    const YAML::Node key = kv.first;
    const YAML::Node value = kv.second;
    const std::string name = key.Scalar();
    TaskClassConfig c;
    std::string memory = "512m";
    config::Schema s;
    const std::string p = path + "." + name;
    s.integer(p + ".capacity", &c.capacity, 0, 10000);
    s.number(p + ".cpus", &c.cpus, 0.01, 1024);
    s.string(p + ".memory", &memory);
    s.integer(p + ".timeout_seconds", &c.timeout_seconds, 1, 7 * 24 * 3600);
    s.boolean(p + ".network", &c.network);
    s.boolean(p + ".gpus", &c.gpus);
    if (Status st = s.apply(value, file, p); !st.ok()) return st;
    auto bytes = parseByteSize(memory);
    if (!bytes) return Error{config::locate(file, value, "key '" + p + ".memory': " + bytes.error())};
    c.memory_bytes = bytes.value();
    tasks->classes[name] = c;
  }
  return Status::Ok();
}

Status parseCommands(const YAML::Node& n, const std::string& file, const std::string& path, TasksConfig* tasks) {
  if (!n.IsMap()) return Error{config::locate(file, n, "key '" + path + "': expected a mapping of command name to settings")};
  tasks->commands.clear();
  for (const auto& kv : n) {
    const YAML::Node key = kv.first;
    const YAML::Node value = kv.second;
    TaskCommandConfig c;
    config::Schema s;
    const std::string p = path + "." + key.Scalar();
    s.string(p + ".image", &c.image);
    s.stringList(p + ".argv", &c.argv);
    s.boolean(p + ".allow_args", &c.allow_args);
    if (Status st = s.apply(value, file, p); !st.ok()) return st;
    if (c.image.empty() || c.argv.empty()) {
      return Error{config::locate(file, value, "key '" + p + "': both 'image' and 'argv' are required")};
    }
    tasks->commands[key.Scalar()] = c;
  }
  return Status::Ok();
}

}  // namespace

void describe(config::Schema& schema, EnvManagerConfig& cfg, const std::string& base_dir) {
  describeServerConfig(schema, cfg.server,
                       ServerEnvNames{"ENV_MANAGER_GRPC_ADDR", "ENV_MANAGER_METRICS_ADDR", "ENV_MANAGER_VERBOSE"});
  schema.string("docker.host", &cfg.docker_host, "DOCKER_HOST");
  schema.integer("docker.timeout_seconds", &cfg.docker_timeout_seconds, 1, 3600);
  schema.string("services.file", &cfg.services_file);
  schema.choice("services.format", &cfg.services_format, {"auto", "native", "compose"});
  schema.stringList("services.compose_profiles", &cfg.compose_profiles);
  schema.string("services.compose_project", &cfg.compose_project);
  schema.choice("services.compose_unsupported", &cfg.compose_unsupported, {"error", "warn"});
  schema.stringList("services.autostart", &cfg.autostart);
  schema.integer("lifecycle.max_concurrent", &cfg.max_concurrent, 1, 64, "ENV_MANAGER_MAX_CONCURRENT");
  schema.integer("lifecycle.health_timeout_seconds", &cfg.health_timeout_seconds, 1, 3600, "ENV_MANAGER_HEALTH_TIMEOUT");
  schema.custom("tasks.classes", [&cfg](const YAML::Node& n, const std::string& f, const std::string& p) {
    return parseClasses(n, f, p, &cfg.tasks);
  });
  schema.custom("tasks.commands", [&cfg](const YAML::Node& n, const std::string& f, const std::string& p) {
    return parseCommands(n, f, p, &cfg.tasks);
  });
  schema.integer("tasks.output_tail_bytes", &cfg.tasks.output_tail_bytes, 0, 1024 * 1024);
  schema.check([&cfg, base_dir]() -> Status {
    if (!cfg.services_file.empty() && cfg.services_file[0] != '/' && !base_dir.empty()) {
      cfg.services_file = base_dir + "/" + cfg.services_file;
    }
    if (cfg.docker_host.rfind("unix:///", 0) != 0 && cfg.docker_host.rfind("tcp://", 0) != 0) {
      return Error{"key 'docker.host' (DOCKER_HOST): expected unix:///path or tcp://host:port, got '" +
                   cfg.docker_host + "'"};
    }
    auto f = cfg.loadStack();
    if (!f) return Error{"key 'services.file': " + f.error()};
    for (const auto& a : cfg.autostart) {
      if (f.value().find(a) == nullptr) return Error{"key 'services.autostart': unknown service '" + a + "'"};
    }
    return Status::Ok();
  });
}

ServicesLoadOptions EnvManagerConfig::servicesLoadOptions() const {
  ServicesLoadOptions o;
  o.format = services_format == "native"    ? ServicesLoadOptions::Format::Native
             : services_format == "compose" ? ServicesLoadOptions::Format::Compose
                                            : ServicesLoadOptions::Format::Auto;
  o.profiles = compose_profiles;
  o.project = compose_project;
  o.unsupported_as_warnings = compose_unsupported == "warn";
  return o;
}

Result<ServicesFile> EnvManagerConfig::loadStack() const {
  if (services_file.empty()) return parseServices(defaultServicesYaml(), "built-in services.yaml");
  return loadServicesFile(services_file, servicesLoadOptions());
}

Result<EnvManagerConfig> loadConfig(const std::string& file, const config::EnvLookup& env) {
  EnvManagerConfig cfg;
  config::Schema schema;
  const auto slash = file.rfind('/');
  describe(schema, cfg, file.empty() ? "" : (slash == std::string::npos ? "." : file.substr(0, slash)));
  if (Status s = schema.load(file, env); !s.ok()) return Error{s.error()};
  return cfg;
}

}  // namespace dspy::envmanager
