// env-manager's own config keys: defaults, environment names, and bad input.
#include <catch2/catch.hpp>

#include "env_manager/EnvManagerConfig.h"
#include "tests/support/Process.h"

using dspy::config::mapEnv;
using dspy::envmanager::EnvManagerConfig;

namespace {

dspy::Result<EnvManagerConfig> load(const std::string& yaml, std::map<std::string, std::string> env = {}) {
  const std::string dir = dspy::test::tempDir();
  dspy::test::writeFile(dir + "/em.yaml", yaml);
  return dspy::envmanager::loadConfig(dir + "/em.yaml", mapEnv(std::move(env)));
}

}  // namespace

TEST_CASE("env-manager defaults and the contract's environment variables", "[config][env_manager]") {
  auto d = load("");
  REQUIRE(d.ok());
  CHECK(d.value().docker_host == "unix:///var/run/docker.sock");
  CHECK(d.value().max_concurrent == 4);
  CHECK(d.value().health_timeout_seconds == 120);
  CHECK(d.value().tasks.classes.count("cpu_short") == 1);
  CHECK(d.value().tasks.commands.empty());

  auto e = load("", {{"DOCKER_HOST", "tcp://127.0.0.1:2375"},
                     {"ENV_MANAGER_MAX_CONCURRENT", "8"},
                     {"ENV_MANAGER_HEALTH_TIMEOUT", "30"}});
  REQUIRE(e.ok());
  CHECK(e.value().docker_host == "tcp://127.0.0.1:2375");
  CHECK(e.value().max_concurrent == 8);
  CHECK(e.value().health_timeout_seconds == 30);
}

TEST_CASE("task classes and commands parse, and reject bad settings with their line", "[config][env_manager]") {
  auto ok = load(R"(
tasks:
  classes:
    small: {capacity: 3, cpus: 0.5, memory: 64m, timeout_seconds: 10, network: true}
  commands:
    echo: {image: "img:1", argv: [echo, hi], allow_args: true}
)");
  REQUIRE(ok.ok());
  const auto& t = ok.value().tasks;
  CHECK(t.classes.size() == 1);  // a configured set replaces the defaults
  CHECK(t.classes.at("small").memory_bytes == 64LL * 1024 * 1024);
  CHECK(t.classes.at("small").network);
  CHECK(t.commands.at("echo").argv == std::vector<std::string>{"echo", "hi"});

  auto bad_capacity = load("tasks:\n  classes:\n    x: {capacity: many}\n");
  REQUIRE_FALSE(bad_capacity.ok());
  CHECK_THAT(bad_capacity.error(), Catch::Contains(":3:19: key 'tasks.classes.x.capacity': expected an integer"));
  auto unknown = load("tasks:\n  classes:\n    x: {gpu: true}\n");
  REQUIRE_FALSE(unknown.ok());
  CHECK_THAT(unknown.error(), Catch::Contains("unknown key 'tasks.classes.x.gpu'"));
  auto no_argv = load("tasks:\n  commands:\n    c: {image: x}\n");
  REQUIRE_FALSE(no_argv.ok());
  CHECK_THAT(no_argv.error(), Catch::Contains("both 'image' and 'argv' are required"));
  auto bad_memory = load("tasks:\n  classes:\n    x: {memory: lots}\n");
  REQUIRE_FALSE(bad_memory.ok());
  CHECK_THAT(bad_memory.error(), Catch::Contains("key 'tasks.classes.x.memory'"));
}

TEST_CASE("docker.host, services.file and autostart are checked before anything starts", "[config][env_manager]") {
  auto host = load("docker:\n  host: /var/run/docker.sock\n");
  REQUIRE_FALSE(host.ok());
  CHECK_THAT(host.error(), Catch::Contains("expected unix:///path or tcp://host:port"));
  auto missing = load("services:\n  file: /nonexistent/services.yaml\n");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error(), Catch::Contains("key 'services.file'"));
  auto ghost = load("services:\n  autostart: [redis, ghost]\n");
  REQUIRE_FALSE(ghost.ok());
  CHECK_THAT(ghost.error(), Catch::Contains("unknown service 'ghost'"));
  auto range = load("lifecycle:\n  max_concurrent: 0\n");
  REQUIRE_FALSE(range.ok());

  // A relative services file is found next to the config file, not in the cwd.
  const std::string dir = dspy::test::tempDir();
  dspy::test::writeFile(dir + "/stack.yaml", "services:\n  only: {image: x}\n");
  dspy::test::writeFile(dir + "/em.yaml", "services:\n  file: stack.yaml\n  autostart: [only]\n");
  auto rel = dspy::envmanager::loadConfig(dir + "/em.yaml", mapEnv({}));
  REQUIRE(rel.ok());
  CHECK(rel.value().services_file == dir + "/stack.yaml");
}
