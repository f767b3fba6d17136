// Orchestrator config: defaults, task classes, commands, env overrides, bad input.
#include <catch2/catch.hpp>

#include "orchestrator/OrchestratorConfig.h"
#include "orchestrator/store/MemoryTaskStore.h"
#include "tests/support/Process.h"

using namespace dspy::orchestrator;

namespace {

dspy::Result<OrchestratorConfig> loadText(const std::string& yaml, std::map<std::string, std::string> env = {}) {
  const auto file = dspy::test::tempDir() + "/orchestrator.yaml";
  dspy::test::writeFile(file, yaml);
  return loadConfig(file, dspy::config::mapEnv(std::move(env)));
}

}  // namespace

TEST_CASE("orchestrator defaults: four classes, loopback, safe process executor", "[orchestrator][config]") {
  auto c = loadConfig("", dspy::config::mapEnv({}));
  REQUIRE(c.ok());
  const auto& cl = c.value().engine.classes;
  CHECK(cl.size() == 4);
  CHECK(cl.at("cpu_short").limiter.kind == "gradient");
  // As the old orchestrator: the built-in classes hand any payload to the env-runner.
  for (const char* name : {"cpu_short", "cpu_long", "gpu"}) CHECK(cl.at(name).executor == "http");
  CHECK(c.value().runner_url == "http://localhost:8083");
  CHECK(c.value().engine.default_class == "cpu_short");
  CHECK(c.value().result_heartbeat_ms == 1000);
  CHECK(cl.at("gpu_slurm").executor == "slurm");
  CHECK_FALSE(c.value().process.allow_arbitrary);
  CHECK(c.value().process.commands.empty());
  CHECK(c.value().env_manager.address == "127.0.0.1:50100");
  CHECK(c.value().store.sync == "normal");
}

TEST_CASE("orchestrator config: classes, limiters, retries, commands and env overrides", "[orchestrator][config]") {
  auto c = loadText(R"(store:
  dir: /tmp/x
  sync: full
tasks:
  max_payload_bytes: 2048
  classes:
    fast:
      executor: noop
      limiter: {kind: rules, min: 2, max: 3, step: 2, latency_threshold_ms: 50}
      retry: {max_attempts: 5, initial_interval_ms: 10, multiplier: 3, max_interval_ms: 100}
    box:
      executor: container
executors:
  process:
    commands:
      hello: {argv: [/bin/echo, hi], env: {A: b}}
env_manager:
  ensure_services: [redis]
)",
                    {{"ENV_QUEUE_DIR", "/tmp/y"}, {"ENV_MANAGER_ADDR", "127.0.0.1:1234"},
                     {"ENV_RUNNER_URL", "http://127.0.0.1:9/"}});
  REQUIRE(c.ok());
  const auto& cfg = c.value();
  CHECK(cfg.store.dir == "/tmp/y");
  CHECK(cfg.store.mode() == SyncMode::Full);
  CHECK(cfg.engine.max_payload_bytes == 2048);
  REQUIRE(cfg.engine.classes.size() == 2);
  const auto& fast = cfg.engine.classes.at("fast");
  CHECK(fast.limiter.kind == "rules");
  CHECK(fast.limiter.initial == 3);  // clamped into [min, max] when not given
  CHECK(fast.limiter.step == 2);
  CHECK(fast.retry.max_attempts == 5);
  CHECK(fast.retry.multiplier == 3);
  CHECK(cfg.engine.classes.at("box").workload_class == "box");
  CHECK(cfg.process.commands.at("hello").env.at("A") == "b");
  CHECK(cfg.env_manager.address == "127.0.0.1:1234");
  CHECK(cfg.env_manager.ensure_services == std::vector<std::string>{"redis"});
  CHECK(cfg.runner_url == "http://127.0.0.1:9");
}

TEST_CASE("orchestrator config: bad classes and commands name file, line and key", "[orchestrator][config]") {
  auto bad_exec = loadText("tasks:\n  classes:\n    x:\n      executor: teleport\n");
  REQUIRE_FALSE(bad_exec.ok());
  CHECK_THAT(bad_exec.error(), Catch::Contains(":4:") && Catch::Contains("tasks.classes.x.executor"));
  auto bad_limits = loadText("tasks:\n  classes:\n    x:\n      limiter: {min: 5, max: 2}\n");
  REQUIRE_FALSE(bad_limits.ok());
  CHECK_THAT(bad_limits.error(), Catch::Contains("max (2) is below min (5)"));
  auto unknown = loadText("tasks:\n  classes:\n    x:\n      limitr: {}\n");
  REQUIRE_FALSE(unknown.ok());
  CHECK_THAT(unknown.error(), Catch::Contains("unknown key 'tasks.classes.x.limitr'"));
  auto no_argv = loadText("executors:\n  process:\n    commands:\n      c: {allow_args: true}\n");
  REQUIRE_FALSE(no_argv.ok());
  CHECK_THAT(no_argv.error(), Catch::Contains("executors.process.commands.c.argv"));
  auto bad_url = loadText("executors:\n  http:\n    url: ftp://x\n");
  REQUIRE_FALSE(bad_url.ok());
  CHECK_THAT(bad_url.error(), Catch::Contains("ENV_RUNNER_URL"));
  CHECK_FALSE(loadText("store:\n  sync: sometimes\n").ok());
  CHECK_FALSE(loadText("tasks:\n  classes: {}\n").ok());
  CHECK_FALSE(loadText("tasks:\n  classes:\n    \"bad name\": {}\n").ok());
}

TEST_CASE("orchestrator config: unknown classes run under tasks.default_class", "[orchestrator][config]") {
  // Own classes without cpu_short: unknown classes are refused unless a default is named.
  auto own = loadText("tasks:\n  classes:\n    a: {executor: noop}\n");
  REQUIRE(own.ok());
  CHECK(own.value().engine.default_class.empty());
  auto named = loadText("tasks:\n  default_class: a\n  classes:\n    a: {executor: noop}\n");
  REQUIRE(named.ok());
  CHECK(named.value().engine.default_class == "a");
  // A listed cpu_short on the runner keeps "auto" on cpu_short; on the process executor not.
  auto runner_listed = loadText("tasks:\n  classes:\n    cpu_short: {executor: http}\n");
  REQUIRE(runner_listed.ok());
  CHECK(runner_listed.value().engine.default_class == "cpu_short");
  auto process_listed = loadText("tasks:\n  classes:\n    cpu_short: {executor: process}\n");
  REQUIRE(process_listed.ok());
  CHECK(process_listed.value().engine.default_class.empty());
  auto builtin_off = loadText("tasks:\n  default_class: \"\"\n");
  REQUIRE(builtin_off.ok());
  CHECK(builtin_off.value().engine.default_class.empty());
  auto missing = loadText("tasks:\n  default_class: b\n  classes:\n    a: {executor: noop}\n");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error(), Catch::Contains("tasks.default_class") && Catch::Contains("'b'"));
  auto off = loadText("tasks:\n  result_heartbeat_ms: 0\n");
  REQUIRE(off.ok());
  CHECK(off.value().result_heartbeat_ms == 0);
  CHECK_FALSE(loadText("tasks:\n  result_heartbeat_ms: -1\n").ok());
}

TEST_CASE("orchestrator config: the HTTP connection keys are range-checked and named", "[orchestrator][config]") {
  auto ok = loadText("http:\n  max_connections: 64\n  keepalive_timeout_seconds: 30\n");
  REQUIRE(ok.ok());
  CHECK(ok.value().server.http_max_connections == 64);
  CHECK(ok.value().server.http_keepalive_timeout_seconds == 30);
  auto zero = loadText("http:\n  max_connections: 0\n");
  REQUIRE_FALSE(zero.ok());
  CHECK_THAT(zero.error(), Catch::Contains("http.max_connections"));
  auto text = loadText("http:\n  keepalive_timeout_seconds: soon\n");
  REQUIRE_FALSE(text.ok());
  CHECK_THAT(text.error(), Catch::Contains("http.keepalive_timeout_seconds") && Catch::Contains("soon"));
}

TEST_CASE("orchestrator config: the workflow limits are range-checked and named", "[orchestrator][config]") {
  auto ok = loadText("workflows:\n  max_nodes: 50\n  max_spec_bytes: 4096\n  max_live_runs: 7\n");
  REQUIRE(ok.ok());
  CHECK(ok.value().workflows.limits.max_nodes == 50);
  CHECK(ok.value().workflows.limits.max_bytes == 4096);
  CHECK(ok.value().workflows.max_live_runs == 7);
  auto zero = loadText("workflows:\n  max_nodes: 0\n");
  REQUIRE_FALSE(zero.ok());
  CHECK_THAT(zero.error(), Catch::Contains("workflows.max_nodes"));
  auto tiny = loadText("workflows:\n  max_spec_bytes: 10\n");
  REQUIRE_FALSE(tiny.ok());
  CHECK_THAT(tiny.error(), Catch::Contains("workflows.max_spec_bytes"));
  auto unknown = loadText("workflows:\n  max_runs: 3\n");
  REQUIRE_FALSE(unknown.ok());
  CHECK_THAT(unknown.error(), Catch::Contains("unknown key 'workflows.max_runs'"));
}

TEST_CASE("orchestrator config: tasks.queue_in_memory is range-checked and named", "[orchestrator][config]") {
  auto def = loadText("{}\n");
  REQUIRE(def.ok());
  CHECK(def.value().engine.queue_in_memory == 2000);
  auto ok = loadText("tasks:\n  queue_in_memory: 64\n");
  REQUIRE(ok.ok());
  CHECK(ok.value().engine.queue_in_memory == 64);
  for (const std::string bad : {"1", "-5", "2000001", "lots"}) {
    auto r = loadText("tasks:\n  queue_in_memory: " + bad + "\n");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains("tasks.queue_in_memory"));
    CHECK_THAT(r.error(), Catch::Contains(":2:"));  // the line
  }
}

TEST_CASE("kafka settings: brokers are checked before anything starts, env wins over the file", "[config]") {
  using dspy::config::mapEnv;
  auto load = [](const std::string& yaml, std::map<std::string, std::string> env = {}) {
    const auto dir = dspy::test::tempDir();
    dspy::test::writeFile(dir + "/o.yaml", yaml);
    return loadConfig(dir + "/o.yaml", mapEnv(std::move(env)));
  };
  auto ok = load("kafka:\n  brokers: 127.0.0.1:9092, SSL://kafka-1.example:9093\n  compression: zstd\n"
                 "  properties: {security.protocol: ssl}\n");
  REQUIRE(ok.ok());
  CHECK(ok.value().kafka.properties.at("security.protocol") == "ssl");
  CHECK(ok.value().kafka.topic == "agent.events");
  auto env = load("", {{"KAFKA_BROKERS", "10.0.0.1:9092"}, {"KAFKA_EVENT_TOPIC", "t1"}});
  REQUIRE(env.ok());
  CHECK(env.value().kafka.brokers == "10.0.0.1:9092");
  CHECK(env.value().kafka.topic == "t1");
  for (const std::string bad : {"garbage", "host:", "host:99999", "a b:1", "127.0.0.1:9092,,", "x:y"}) {
    auto r = load("", {{"KAFKA_BROKERS", bad}});
    INFO(bad);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains("kafka.brokers") && Catch::Contains("host:port"));
  }
  CHECK_FALSE(load("kafka:\n  compression: brotli\n").ok());
  CHECK_FALSE(load("kafka:\n  properties: [a, b]\n").ok());
}

TEST_CASE("kafka settings librdkafka does not know are refused at start, naming them", "[config]") {
  MemoryTaskStore store;
  EventHub hub;
  KafkaConfig k;
  k.brokers = "127.0.0.1:1";
  k.properties["no.such.setting"] = "1";
  auto r = KafkaRelay::create(k, store, hub);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error(), Catch::Contains("'no.such.setting'"));
  k.properties.clear();
  k.properties["acks"] = "sometimes";
  CHECK_FALSE(KafkaRelay::create(k, store, hub).ok());
  k.properties.clear();
  REQUIRE(KafkaRelay::create(k, store, hub).ok());  // created, not connected
}
