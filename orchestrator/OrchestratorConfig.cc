// Orchestrator config keys and the environment variables operators already use.
#include "orchestrator/OrchestratorConfig.h"

#include <yaml-cpp/yaml.h>

#include <cctype>

namespace dspy::orchestrator {

OrchestratorConfig::OrchestratorConfig() {
  // The built-in classes hand every task to the env-runner, as the old orchestrator did:
  // any payload is accepted and the runner validates it. A config that lists its own
  // classes replaces these.
  ClassConfig cpu_short;
  cpu_short.executor = "http";
  cpu_short.limiter = LimiterConfig{.kind = "gradient", .initial = 4, .min = 1, .max = 32};
  cpu_short.timeout = std::chrono::seconds(60);
  ClassConfig cpu_long;
  cpu_long.executor = "http";
  cpu_long.limiter = LimiterConfig{.kind = "fixed", .initial = 2, .min = 1, .max = 2};
  cpu_long.timeout = std::chrono::hours(1);
  ClassConfig gpu;
  gpu.executor = "http";
  gpu.limiter = LimiterConfig{.kind = "fixed", .initial = 1, .min = 1, .max = 1};
  gpu.timeout = std::chrono::hours(1);
  ClassConfig gpu_slurm;
  gpu_slurm.executor = "slurm";
  gpu_slurm.limiter = LimiterConfig{.kind = "fixed", .initial = 16, .min = 1, .max = 16};
  gpu_slurm.timeout = std::chrono::hours(24);
  gpu_slurm.retry.max_attempts = 1;
  engine.classes = {{"cpu_short", cpu_short}, {"cpu_long", cpu_long}, {"gpu", gpu}, {"gpu_slurm", gpu_slurm}};
}

namespace {

using Ms = std::chrono::milliseconds;

Status parseClasses(const YAML::Node& n, const std::string& file, const std::string& path, EngineConfig* engine) {
  if (!n.IsMap()) return Error{config::locate(file, n, "key '" + path + "': expected a mapping of class name to settings")};
  engine->classes.clear();
  for (const auto& kv : n) {
    const YAML::Node key = kv.first;
    const YAML::Node value = kv.second;
    const std::string name = key.Scalar();
    if (Status s = validateTaskId(name); !s.ok() || name.size() > 64) {
      return Error{config::locate(file, key, "key '" + path + "': bad class name '" + name + "'")};
    }
    ClassConfig c;
    c.limiter = LimiterConfig{.kind = "fixed", .initial = 4, .min = 1, .max = 4};
    const std::string p = path + "." + name;
    std::int64_t timeout_s = 60, window = 250, latency = 5000, probe = 30'000, r_init = 1000, r_max = 100'000;
    config::Schema s;
    s.choice(p + ".executor", &c.executor, {"process", "container", "http", "slurm", "noop"});
    s.integer(p + ".timeout_seconds", &timeout_s, 1, 30 * 24 * 3600);
    s.string(p + ".workload_class", &c.workload_class);
    s.integer(p + ".max_queued", &c.max_queued, 1, 100'000'000);
    s.choice(p + ".limiter.kind", &c.limiter.kind, {"fixed", "rules", "gradient"});
    s.integer(p + ".limiter.initial", &c.limiter.initial, 1, 100'000);
    s.integer(p + ".limiter.min", &c.limiter.min, 1, 100'000);
    s.integer(p + ".limiter.max", &c.limiter.max, 1, 100'000);
    s.integer(p + ".limiter.window_ms", &window, 1, 3'600'000);
    s.integer(p + ".limiter.step", &c.limiter.step, 1, 10'000);
    s.integer(p + ".limiter.queue_high_watermark", &c.limiter.queue_high_watermark, 0, 100'000'000);
    s.integer(p + ".limiter.latency_threshold_ms", &latency, 1, 86'400'000);
    s.number(p + ".limiter.error_threshold", &c.limiter.error_threshold, 0, 1);
    s.integer(p + ".limiter.min_samples", &c.limiter.min_samples, 1, 100'000);
    s.number(p + ".limiter.tolerance", &c.limiter.tolerance, 1, 100);
    s.number(p + ".limiter.smoothing", &c.limiter.smoothing, 0.01, 1);
    s.integer(p + ".limiter.probe_interval_ms", &probe, 100, 86'400'000);
    s.integer(p + ".retry.max_attempts", &c.retry.max_attempts, 1, 1000);
    s.integer(p + ".retry.initial_interval_ms", &r_init, 0, 86'400'000);
    s.number(p + ".retry.multiplier", &c.retry.multiplier, 1, 100);
    s.integer(p + ".retry.max_interval_ms", &r_max, 0, 86'400'000);
    bool initial_set = false;
    if (value.IsMap()) {
      const YAML::Node lim = value["limiter"];
      if (lim && lim.IsMap() && lim["initial"]) initial_set = true;
    }
    if (Status st = s.apply(value, file, p); !st.ok()) return st;
    c.timeout = std::chrono::seconds(timeout_s);
    c.limiter.window = Ms(window);
    c.limiter.latency_threshold = Ms(latency);
    c.limiter.probe_interval = Ms(probe);
    c.retry.initial_interval = Ms(r_init);
    c.retry.max_interval = Ms(r_max);
    if (!initial_set) c.limiter.initial = std::clamp(c.limiter.initial, c.limiter.min, std::max(c.limiter.min, c.limiter.max));
    if (Status v = validate(c.limiter, "key '" + p + ".limiter'"); !v.ok()) {
      return Error{config::locate(file, value, v.error())};
    }
    if (c.executor == "container" && c.workload_class.empty()) c.workload_class = name;
    engine->classes[name] = c;
  }
  if (engine->classes.empty()) return Error{config::locate(file, n, "key '" + path + "': at least one class is needed")};
  return Status::Ok();
}

Status parseCommands(const YAML::Node& n, const std::string& file, const std::string& path, ProcessExecutorConfig* pc) {
  if (!n.IsMap()) return Error{config::locate(file, n, "key '" + path + "': expected a mapping of command name to settings")};
  pc->commands.clear();
  for (const auto& kv : n) {
    const YAML::Node key = kv.first;
    const YAML::Node value = kv.second;
    ProcessCommand c;
    const std::string p = path + "." + key.Scalar();
    config::Schema s;
    s.stringList(p + ".argv", &c.argv);
    s.boolean(p + ".allow_args", &c.allow_args);
    s.string(p + ".cwd", &c.cwd);
    s.custom(p + ".env", [&c](const YAML::Node& e, const std::string& f, const std::string& ep) -> Status {
      if (!e.IsMap()) return Error{config::locate(f, e, "key '" + ep + "': expected a mapping of NAME: value")};
      for (const auto& item : e) c.env[item.first.Scalar()] = item.second.Scalar();
      return Status::Ok();
    });
    if (Status st = s.apply(value, file, p); !st.ok()) return st;
    if (c.argv.empty()) return Error{config::locate(file, value, "key '" + p + ".argv': a non-empty list is required")};
    pc->commands[key.Scalar()] = c;
  }
  return Status::Ok();
}

}  // namespace

void describe(config::Schema& schema, OrchestratorConfig& cfg) {
  describeServerConfig(schema, cfg.server,
                       ServerEnvNames{"ORCHESTRATOR_GRPC_ADDR", "ORCHESTRATOR_HTTP_ADDR", "ORCHESTRATOR_VERBOSE"});
  schema.string("store.dir", &cfg.store.dir, "ENV_QUEUE_DIR");
  schema.choice("store.sync", &cfg.store.sync, {"normal", "full"});
  schema.integer("store.max_batch", &cfg.store.max_batch, 1, 100'000);
  schema.custom("tasks.classes", [&cfg](const YAML::Node& n, const std::string& f, const std::string& p) {
    return parseClasses(n, f, p, &cfg.engine);
  });
  schema.custom("executors.process.commands", [&cfg](const YAML::Node& n, const std::string& f, const std::string& p) {
    return parseCommands(n, f, p, &cfg.process);
  });
  schema.boolean("executors.process.allow_arbitrary", &cfg.process.allow_arbitrary);
  schema.string("executors.process.work_dir", &cfg.process.work_dir);
  schema.integer("executors.process.output_tail_bytes", &cfg.process.output_tail_bytes, 0, 1024 * 1024);
  schema.string("executors.http.url", &cfg.runner_url, "ENV_RUNNER_URL");
  schema.address("env_manager.address", &cfg.env_manager.address, "ENV_MANAGER_ADDR");
  schema.string("env_manager.token", &cfg.env_manager.token);
  schema.string("env_manager.ca_file", &cfg.env_manager.ca_file);
  schema.stringList("env_manager.ensure_services", &cfg.env_manager.ensure_services);
  schema.integer("tasks.max_payload_bytes", &cfg.engine.max_payload_bytes, 1, 16 * 1024 * 1024);
  schema.integer("tasks.retain_finished", &cfg.engine.retain_finished, 0, 10'000'000);
  schema.integer("tasks.queue_in_memory", &cfg.engine.queue_in_memory, 2, 1'000'000);
  schema.string("tasks.default_class", &cfg.default_class);
  schema.integer("tasks.result_heartbeat_ms", &cfg.result_heartbeat_ms, 0, 3'600'000);
  schema.integer("workflows.max_nodes", &cfg.workflows.limits.max_nodes, 1, 100'000);
  schema.integer("workflows.max_spec_bytes", &cfg.workflows.limits.max_bytes, 1024, 64 * 1024 * 1024);
  schema.integer("workflows.max_live_runs", &cfg.workflows.max_live_runs, 1, 10'000'000);
  schema.string("kafka.brokers", &cfg.kafka.brokers, "KAFKA_BROKERS");
  schema.string("kafka.topic", &cfg.kafka.topic, "KAFKA_EVENT_TOPIC");
  schema.integer("kafka.linger_ms", &cfg.kafka.linger_ms, 0, 900'000);
  schema.integer("kafka.batch_bytes", &cfg.kafka.batch_bytes, 1, 2'147'483'647);
  schema.choice("kafka.compression", &cfg.kafka.compression, {"none", "gzip", "snappy", "lz4", "zstd"});
  schema.integer("kafka.message_timeout_ms", &cfg.kafka.message_timeout_ms, 0, 2'147'483'647);
  schema.integer("kafka.flush_timeout_ms", &cfg.kafka.flush_timeout_ms, 0, 600'000);
  schema.integer("kafka.degraded_depth", &cfg.kafka.degraded_depth, 1, INT64_MAX);
  schema.string("kafka.spool_dir", &cfg.kafka.spool_dir, "KAFKA_SPOOL_DIR");
  schema.custom("kafka.properties", [&cfg](const YAML::Node& n, const std::string& f, const std::string& p) -> Status {
    if (!n.IsMap()) return Error{config::locate(f, n, "key '" + p + "': expected a mapping of librdkafka setting: value")};
    for (const auto& kv : n) {
      if (!kv.second.IsScalar()) {
        return Error{config::locate(f, kv.second, "key '" + p + "." + kv.first.Scalar() + "': expected a value")};
      }
      cfg.kafka.properties[kv.first.Scalar()] = kv.second.Scalar();
    }
    return Status::Ok();
  });
  schema.string("slurm.templates_dir", &cfg.slurm.templates_dir, "SLURM_TEMPLATES_DIR");
  schema.string("slurm.work_dir", &cfg.slurm.work_dir, "SLURM_WORK_DIR");
  schema.string("slurm.default_template", &cfg.slurm.default_template);
  schema.string("slurm.bin_dir", &cfg.slurm.commands.bin_dir);
  schema.string("slurm.conf", &cfg.slurm.commands.conf, "SLURM_CONF");
  schema.choice("slurm.accounting", &cfg.slurm.commands.accounting, {"auto", "sacct", "scontrol"});
  schema.custom("slurm.command_timeout_ms", [&cfg](const YAML::Node& n, const std::string& f, const std::string& p) -> Status {
    std::int64_t v = 0;
    if (!n.IsScalar() || !YAML::convert<std::int64_t>::decode(n, v) || v < 100 || v > 600'000) {
      return Error{config::locate(f, n, "key '" + p + "': expected a whole number of milliseconds, 100-600000")};
    }
    cfg.slurm.commands.timeout = std::chrono::milliseconds(v);
    return Status::Ok();
  });
  schema.integer("slurm.poll_min_ms", &cfg.slurm.poll_min_ms, 10, 3'600'000);
  schema.integer("slurm.poll_max_ms", &cfg.slurm.poll_max_ms, 10, 3'600'000);
  schema.integer("slurm.unreachable_deadline_s", &cfg.slurm.unreachable_deadline_s, 1, 30 * 86'400);
  schema.integer("slurm.submit_wait_ms", &cfg.slurm.submit_wait_ms, 0, 600'000);
  schema.integer("slurm.lost_after_misses", &cfg.slurm.lost_after_misses, 1, 1000);
  schema.integer("slurm.output_tail_bytes", &cfg.slurm.output_tail_bytes, 0, 1 << 20);
  schema.check([&cfg]() -> Status {
    if (cfg.slurm.poll_max_ms < cfg.slurm.poll_min_ms) {
      return Error{"key 'slurm.poll_max_ms': must be >= slurm.poll_min_ms (" + std::to_string(cfg.slurm.poll_min_ms) + ")"};
    }
    if (cfg.slurm.work_dir.empty()) cfg.slurm.work_dir = cfg.store.dir + "/slurm";
    if (cfg.slurm.default_template.empty()) return Error{"key 'slurm.default_template': must not be empty"};
    return Status::Ok();
  });
  schema.integer("events.retention_hours", &cfg.events.retention_hours, 1, 24 * 3650);
  schema.integer("events.stream_buffer", &cfg.events.stream_buffer, 100, 10'000'000);
  schema.check([&cfg]() -> Status {
    if (Status s = validateBrokers(cfg.kafka.brokers); !s.ok()) {
      return Error{"key 'kafka.brokers' (KAFKA_BROKERS): " + s.error()};
    }
    if (!cfg.kafka.brokers.empty() && cfg.kafka.topic.empty()) {
      return Error{"key 'kafka.topic' (KAFKA_EVENT_TOPIC): must not be empty"};
    }
    return Status::Ok();
  });
  schema.check([&cfg]() -> Status {
    if (cfg.store.dir.empty()) return Error{"key 'store.dir' (ENV_QUEUE_DIR): must not be empty"};
    if (!cfg.runner_url.empty() && cfg.runner_url.rfind("http://", 0) != 0 && cfg.runner_url.rfind("https://", 0) != 0) {
      return Error{"key 'executors.http.url' (ENV_RUNNER_URL): expected http://host:port, got '" + cfg.runner_url + "'"};
    }
    while (!cfg.runner_url.empty() && cfg.runner_url.back() == '/') cfg.runner_url.pop_back();
    // "auto": like the old orchestrator, unknown classes run on the env-runner under
    // cpu_short while cpu_short is a runner class (the built-in set); otherwise they
    // are refused unless a default is named.
    std::string dc = cfg.default_class;
    if (dc == "auto") {
      auto it = cfg.engine.classes.find("cpu_short");
      dc = it != cfg.engine.classes.end() && it->second.executor == "http" ? "cpu_short" : "";
    }
    if (!dc.empty() && !cfg.engine.classes.count(dc)) {
      return Error{"key 'tasks.default_class': '" + dc + "' is not a class in tasks.classes"};
    }
    cfg.engine.default_class = dc;
    return Status::Ok();
  });
}

Status validateBrokers(const std::string& brokers) {
  std::size_t start = 0;
  while (start <= brokers.size() && !brokers.empty()) {
    std::size_t comma = brokers.find(',', start);
    if (comma == std::string::npos) comma = brokers.size();
    std::string entry = brokers.substr(start, comma - start);
    while (!entry.empty() && entry.front() == ' ') entry.erase(entry.begin());
    while (!entry.empty() && entry.back() == ' ') entry.pop_back();
    const std::string shown = entry;
    if (auto scheme = entry.find("://"); scheme != std::string::npos) entry = entry.substr(scheme + 3);
    auto ep = config::parseEndpoint(entry);
    bool host_ok = ep.ok() && !ep.value().host.empty();
    for (const char c : host_ok ? ep.value().host : std::string()) {
      host_ok = host_ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == ':');
    }
    if (entry.empty() || !host_ok || ep.value().port == 0) {
      return Error{"'" + shown + "' is not host:port (brokers are a comma-separated list of host:port)",
                   ErrorKind::InvalidArgument};
    }
    start = comma + 1;
  }
  return Status::Ok();
}

Result<OrchestratorConfig> loadConfig(const std::string& file, const config::EnvLookup& env) {
  OrchestratorConfig cfg;
  config::Schema schema;
  describe(schema, cfg);
  if (Status s = schema.load(file, env); !s.ok()) return Error{s.error()};
  return cfg;
}

}  // namespace dspy::orchestrator
