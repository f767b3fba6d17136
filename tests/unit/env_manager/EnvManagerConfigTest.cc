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

TEST_CASE("the compose keys are checked and shape how services.file is read", "[config][env_manager]") {
  auto format = load("services:\n  format: docker\n");
  REQUIRE_FALSE(format.ok());
  CHECK_THAT(format.error(), Catch::Contains("services.format") && Catch::Contains("compose"));
  auto mode = load("services:\n  compose_unsupported: ignore\n");
  REQUIRE_FALSE(mode.ok());
  CHECK_THAT(mode.error(), Catch::Contains("services.compose_unsupported"));

  const std::string dir = dspy::test::tempDir();
  // A plain name, read as compose only because the config says so: `privileged` is then
  // refused as unsupported, and accepted as a warning with compose_unsupported: warn.
  dspy::test::writeFile(dir + "/stack.yaml", "services:\n  a:\n    image: x\n    privileged: true\n"
                                             "    profiles: [extra]\n  b: {image: y}\n");
  dspy::test::writeFile(dir + "/em.yaml", "services:\n  file: stack.yaml\n  format: compose\n");
  auto refused = dspy::envmanager::loadConfig(dir + "/em.yaml", mapEnv({}));
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error(), Catch::Contains("stack.yaml:4:5") && Catch::Contains("services.a.privileged"));
  dspy::test::writeFile(dir + "/em.yaml", "services:\n  file: stack.yaml\n  format: compose\n"
                                          "  compose_unsupported: warn\n  compose_profiles: [extra]\n"
                                          "  compose_project: MyStack\n  autostart: [a]\n");
  auto warned = dspy::envmanager::loadConfig(dir + "/em.yaml", mapEnv({}));
  REQUIRE(warned.ok());
  auto stack = warned.value().loadStack();
  REQUIRE(stack.ok());
  CHECK(stack.value().format == "compose");
  CHECK(stack.value().project == "mystack");
  CHECK(stack.value().names() == std::vector<std::string>{"a", "b"});  // the profile is enabled
  REQUIRE(stack.value().warnings.size() == 1);
  // Without the profile, autostart names a service that is not in the stack.
  dspy::test::writeFile(dir + "/em.yaml", "services:\n  file: stack.yaml\n  format: compose\n"
                                          "  compose_unsupported: warn\n  autostart: [a]\n");
  auto no_profile = dspy::envmanager::loadConfig(dir + "/em.yaml", mapEnv({}));
  REQUIRE_FALSE(no_profile.ok());
  CHECK_THAT(no_profile.error(), Catch::Contains("unknown service 'a'"));
}
