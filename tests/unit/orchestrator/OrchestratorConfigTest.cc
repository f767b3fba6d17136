// Orchestrator config: defaults, task classes, commands, env overrides, bad input.
#include <catch2/catch.hpp>

#include "orchestrator/OrchestratorConfig.h"
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
  CHECK(cl.at("gpu").executor == "container");
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
