// Compose files: the local stack's compose twin reads as services.local.yaml, the
// translation of each compose key, interpolation, merge keys, profiles, the round trip
// through our YAML, and every refusal with file:line and the key (the corpus under
// tests/fuzz/compose names the message each bad file must get).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "env_manager/lifecycle/ServiceGraph.h"
#include "env_manager/services/ServiceSpec.h"

using namespace dspy::envmanager;
using dspy::Result;

namespace {

ServicesLoadOptions withEnv(std::map<std::string, std::string> vars) {
  ServicesLoadOptions o;
  o.env = [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  return o;
}

Result<ServicesFile> compose(const std::string& yaml, ServicesLoadOptions o = withEnv({})) {
  return parseCompose(yaml, "docker-compose.yml", "/srv/app", o);
}

std::string errorOf(const std::string& yaml, ServicesLoadOptions o = withEnv({})) {
  auto r = compose(yaml, std::move(o));
  REQUIRE_FALSE(r.ok());
  return r.error();
}

std::string readFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("the compose twin of the local stack reads as services.local.yaml", "[services][compose]") {
  auto native = loadServicesFile(std::string(DSPY_SOURCE_DIR) + "/deploy/config/services.local.yaml");
  auto twin = loadServicesFile(std::string(DSPY_SOURCE_DIR) + "/deploy/config/services.local.compose.yml",
                               withEnv({}));
  REQUIRE(native.ok());
  REQUIRE(twin.ok());
  CHECK(native.value().format == "native");
  CHECK(twin.value().format == "compose");  // told by its name
  CHECK(twin.value().project == "config");  // the folder's name, as compose names it
  CHECK(twin.value().network == "config_default");
  REQUIRE(twin.value().names() == native.value().names());
  ServiceGraph gn(native.value()), gt(twin.value());
  for (const auto& n : native.value().services) {
    const auto* t = twin.value().find(n.name);
    INFO(n.name);
    CHECK(t->image == n.image);
    CHECK(t->command == n.command);
    CHECK(t->environment == n.environment);
    CHECK(t->required == n.required);
    CHECK(t->healthcheck.kind == n.healthcheck.kind);
    CHECK(t->healthcheck.port == n.healthcheck.port);
    CHECK(t->healthcheck.path == n.healthcheck.path);
    CHECK(t->healthcheck.interval == n.healthcheck.interval);
    CHECK_FALSE(t->healthcheck.container_test.empty());
    CHECK(gt.depth(n.name) == gn.depth(n.name));
    REQUIRE(t->ports.size() == n.ports.size());
    for (std::size_t i = 0; i < n.ports.size(); ++i) {
      CHECK(t->ports[i].host_ip == n.ports[i].host_ip);
      CHECK(t->ports[i].host_port == n.ports[i].host_port);
      CHECK(t->ports[i].container_port == n.ports[i].container_port);
    }
    REQUIRE(t->depends_on.size() == n.depends_on.size());
    for (std::size_t i = 0; i < n.depends_on.size(); ++i) {
      CHECK(t->depends_on[i].service == n.depends_on[i].service);
      CHECK(t->depends_on[i].condition == n.depends_on[i].condition);
    }
    REQUIRE(t->volumes.size() == n.volumes.size());
    for (std::size_t i = 0; i < n.volumes.size(); ++i) {
      CHECK(t->volumes[i].source == "config_" + n.volumes[i].source);
      CHECK(t->volumes[i].target == n.volumes[i].target);
    }
  }
}

TEST_CASE("compose keys translate to the services model", "[services][compose]") {
  auto r = compose(R"(
version: "2.4"
name: Shop_Front
x-common: &common
  image: busybox:1.36
  labels: [team=agents]
services:
  web:
    <<: *common
    command: sh -c 'echo "hi there"; sleep 1'
    entrypoint: ["/bin/entry"]
    environment:
      - A=1
      - FROM_SHELL
      - MISSING
    ports:
      - "8080:80"
      - "127.0.0.1::9000"
      - "[::1]:7000:7000/udp"
      - "3000-3001:4000-4001"
      - target: 5000
        published: "15000"
        host_ip: 127.0.0.1
      - 6000
    expose: ["7100"]
    volumes:
      - data:/data:ro
      - ./conf:/etc/conf
      - /scratch
      - type: tmpfs
        target: /run/cache
      - type: bind
        source: /var/log
        target: /host-logs
        read_only: true
        bind: {create_host_path: false}
    networks:
      back: {aliases: [www]}
      default:
    depends_on:
      db: {condition: service_healthy}
      init: {condition: service_completed_successfully}
    healthcheck:
      test: curl -f http://localhost/
      interval: 1m30s
      timeout: 5s
      retries: 4
      start_period: 500ms
    restart: on-failure:7
    working_dir: /app
    user: "1000:1000"
    hostname: web1
    stop_grace_period: 1m
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 256M, pids: 100}
        reservations:
          devices: [{driver: nvidia, count: 2, capabilities: [gpu]}]
    x-dspy: {required: false}
  db:
    image: "redis:${REDIS_TAG:-7}"
    healthcheck: {test: ["CMD", "redis-cli", "ping"]}
    restart: always
    mem_limit: 1g
    cpus: 2
  init:
    image: busybox
    command: ["true"]
    restart: "no"
    healthcheck: {disable: true}
    container_name: shop-init
volumes:
  data:
networks:
  back:
    driver: bridge
)",
                   withEnv({{"FROM_SHELL", "yes"}}));
  REQUIRE(r.ok());
  const auto& f = r.value();
  CHECK(f.project == "shop_front");
  CHECK(f.network == "shop_front_default");
  const auto* web = f.find("web");
  REQUIRE(web != nullptr);
  CHECK(web->image == "busybox:1.36");
  CHECK(web->labels.at("team") == "agents");
  CHECK(web->command == std::vector<std::string>{"sh", "-c", "echo \"hi there\"; sleep 1"});
  CHECK(web->entrypoint == std::vector<std::string>{"/bin/entry"});
  CHECK(web->environment == std::map<std::string, std::string>{{"A", "1"}, {"FROM_SHELL", "yes"}});
  REQUIRE(web->ports.size() == 8);
  CHECK(web->ports[0].host_ip.empty());  // compose publishes on every interface by default
  CHECK(web->ports[0].host_port == 8080);
  CHECK(web->ports[1].random_host_port);
  CHECK(web->ports[1].host_ip == "127.0.0.1");
  CHECK(web->ports[2].host_ip == "::1");
  CHECK(web->ports[2].protocol == "udp");
  CHECK(web->ports[3].host_port == 3000);
  CHECK(web->ports[3].container_port == 4000);
  CHECK(web->ports[4].host_port == 3001);
  CHECK(web->ports[4].container_port == 4001);
  CHECK(web->ports[5].host_port == 15000);
  CHECK(web->ports[6].random_host_port);
  CHECK(web->ports[6].container_port == 6000);
  CHECK_FALSE(web->ports[7].published());
  CHECK(web->ports[7].container_port == 7100);
  REQUIRE(web->volumes.size() == 5);
  CHECK(web->volumes[0].source == "shop_front_data");
  CHECK(web->volumes[0].read_only);
  CHECK(web->volumes[1].source == "/srv/app/conf");
  CHECK(web->volumes[1].create_host_path);
  CHECK(web->volumes[2].source.empty());
  CHECK(web->volumes[2].target == "/scratch");
  CHECK(web->volumes[3].tmpfs);
  CHECK(web->volumes[4].source == "/var/log");
  CHECK(web->volumes[4].read_only);
  CHECK_FALSE(web->volumes[4].create_host_path);
  REQUIRE(web->networks.size() == 2);
  CHECK(web->networks[0].name == "shop_front_back");
  CHECK(web->networks[0].aliases == std::vector<std::string>{"www"});
  CHECK(web->networks[1].name == "shop_front_default");
  REQUIRE(web->depends_on.size() == 2);
  CHECK(web->depends_on[0].condition == DependencySpec::Condition::Healthy);
  CHECK(web->depends_on[1].condition == DependencySpec::Condition::CompletedSuccessfully);
  CHECK(web->healthcheck.kind == HealthCheckSpec::Kind::Exec);
  CHECK(web->healthcheck.command == std::vector<std::string>{"/bin/sh", "-c", "curl -f http://localhost/"});
  CHECK(web->healthcheck.container_test == std::vector<std::string>{"CMD-SHELL", "curl -f http://localhost/"});
  CHECK(web->healthcheck.interval == std::chrono::seconds(90));
  CHECK(web->healthcheck.timeout == std::chrono::seconds(5));
  CHECK(web->healthcheck.start_period == std::chrono::milliseconds(500));
  CHECK(web->healthcheck.retries == 4);
  CHECK(web->restart.policy == RestartSpec::Policy::OnFailure);
  CHECK(web->restart.max_restarts == 7);
  CHECK(web->working_dir == "/app");
  CHECK(web->user == "1000:1000");
  CHECK(web->hostname == "web1");
  CHECK(web->stop_grace_period == std::chrono::seconds(60));
  CHECK(web->cpus == 0.5);
  CHECK(web->memory_bytes == 256 * 1024 * 1024);
  CHECK(web->pids_limit == 100);
  CHECK(web->gpus);
  CHECK(web->gpu_count == 2);
  CHECK_FALSE(web->required);
  const auto* db = f.find("db");
  CHECK(db->image == "redis:7");
  CHECK(db->healthcheck.command == std::vector<std::string>{"redis-cli", "ping"});
  CHECK(db->healthcheck.interval == std::chrono::seconds(30));  // Docker's default
  CHECK(db->restart.policy == RestartSpec::Policy::Always);
  CHECK(db->memory_bytes == 1024LL * 1024 * 1024);
  CHECK(db->cpus == 2);
  CHECK(db->networks.at(0).name == "shop_front_default");
  const auto* init = f.find("init");
  CHECK(init->restart.policy == RestartSpec::Policy::No);
  CHECK(init->healthcheck.kind == HealthCheckSpec::Kind::None);
  CHECK(init->healthcheck.container_test == std::vector<std::string>{"NONE"});
  CHECK(init->container_name == "shop-init");
}

TEST_CASE("compose interpolation: defaults, errors, escapes and .env", "[services][compose]") {
  const auto dir = std::filesystem::temp_directory_path() / ("dspy-compose-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / ".env") << "# comment\nTAG=from-dotenv\nexport PORT='7000'\nSHELL_WINS=dotenv\n";
  const std::string yaml = R"(
services:
  a:
    image: "app:${TAG}"
    command: ["echo", "$$HOME", "${EMPTY:-dflt}", "${EMPTY-kept}", "${UNSET-unset}", "${TAG:+alt}", "$SHELL_WINS", "${NESTED:-${TAG}}"]
    ports: ["127.0.0.1:${PORT}:80"]
)";
  const auto file = dir / "compose.yaml";
  std::ofstream(file) << yaml;
  auto r = loadServicesFile(file.string(), withEnv({{"EMPTY", ""}, {"SHELL_WINS", "shell"}}));
  REQUIRE(r.ok());
  const auto* a = r.value().find("a");
  CHECK(a->image == "app:from-dotenv");
  CHECK(a->command == std::vector<std::string>{"echo", "$HOME", "dflt", "", "unset", "alt", "shell", "from-dotenv"});
  CHECK(a->ports.at(0).host_port == 7000);
  CHECK(r.value().project == dir.filename().string());

  auto missing = errorOf("services:\n  a:\n    image: \"x:${NEED:?set NEED to the tag}\"\n");
  CHECK_THAT(missing, Catch::Contains("docker-compose.yml:3:12") && Catch::Contains("services.a.image") &&
                          Catch::Contains("required variable NEED is missing: set NEED to the tag"));
  CHECK_THAT(errorOf("services:\n  a:\n    image: \"x:${1BAD}\"\n"), Catch::Contains("invalid variable name"));
  CHECK_THAT(errorOf("services:\n  a:\n    image: \"x:${OPEN\"\n"), Catch::Contains("unterminated ${"));
  CHECK_THAT(errorOf("services:\n  a:\n    image: \"x:${V/a/b}\"\n"), Catch::Contains("invalid interpolation"));
  auto warned = compose("services:\n  a:\n    image: \"x:${NOPE}\"\n");
  REQUIRE(warned.ok());
  REQUIRE(warned.value().warnings.size() == 1);
  CHECK_THAT(warned.value().warnings[0], Catch::Contains("variable NOPE is not set"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("compose env_file: lines, quotes, precedence and a missing file", "[services][compose]") {
  const auto dir = std::filesystem::temp_directory_path() / ("dspy-envfile-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "app.env") << "A=from-file\nB=\"quoted value\"\n\n# c\nC=3\n";
  const std::string yaml = "services:\n  a:\n    image: x\n    env_file: [app.env, {path: none.env, required: false}]\n"
                           "    environment: {C: over}\n";
  auto r = parseCompose(yaml, "c.yml", dir.string(), withEnv({}));
  REQUIRE(r.ok());
  CHECK(r.value().find("a")->environment ==
        std::map<std::string, std::string>{{"A", "from-file"}, {"B", "quoted value"}, {"C", "over"}});
  auto bad = parseCompose("services:\n  a:\n    image: x\n    env_file: gone.env\n", "c.yml", dir.string(), withEnv({}));
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error(), Catch::Contains("c.yml:4:15") && Catch::Contains("cannot read env file"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("compose profiles: inactive services are left out, a dependency on one is refused", "[services][compose]") {
  const std::string yaml = R"(
services:
  app: {image: x}
  debug: {image: y, profiles: [debug]}
  tool: {image: z, profiles: [tools], depends_on: [app]}
)";
  auto plain = compose(yaml);
  REQUIRE(plain.ok());
  CHECK(plain.value().names() == std::vector<std::string>{"app"});
  auto o = withEnv({{"COMPOSE_PROFILES", "tools"}});
  o.profiles = {"debug"};
  auto both = compose(yaml, o);
  REQUIRE(both.ok());
  CHECK(both.value().names() == std::vector<std::string>{"app", "debug", "tool"});
  CHECK_THAT(errorOf("services:\n  app: {image: x, depends_on: [dbg]}\n  dbg: {image: y, profiles: [debug]}\n"),
             Catch::Contains("docker-compose.yml:2:32") && Catch::Contains("in a profile not enabled"));
  auto optional = compose("services:\n  app: {image: x, depends_on: {dbg: {condition: service_started, required: false}}}\n"
                          "  dbg: {image: y, profiles: [debug]}\n");
  REQUIRE(optional.ok());
  CHECK(optional.value().find("app")->depends_on.empty());
}

TEST_CASE("compose files round-trip through our YAML", "[services][compose]") {
  auto twin = loadServicesFile(std::string(DSPY_SOURCE_DIR) + "/deploy/config/services.local.compose.yml", withEnv({}));
  REQUIRE(twin.ok());
  const std::string text = toNativeYaml(twin.value());
  auto back = parseServices(text, "imported.yaml");
  INFO(text);
  REQUIRE(back.ok());
  CHECK(back.value().project == twin.value().project);
  CHECK(back.value().network == twin.value().network);
  REQUIRE(back.value().names() == twin.value().names());
  for (const auto& s : twin.value().services) {
    const auto* b = back.value().find(s.name);
    INFO(s.name);
    CHECK(b->definitionHash(back.value().network) == s.definitionHash(twin.value().network));
    CHECK(b->healthcheck.kind == s.healthcheck.kind);
    CHECK(b->required == s.required);
    CHECK(b->restart.policy == s.restart.policy);
  }
}

TEST_CASE("a services file is read as compose by its name or its keys, or as configured", "[services][compose]") {
  const auto dir = std::filesystem::temp_directory_path() / ("dspy-detect-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string plain = "services:\n  a: {image: x}\n";
  std::ofstream(dir / "stack.yaml") << plain;
  std::ofstream(dir / "docker-compose.prod.yml") << plain;
  std::ofstream(dir / "keys.yaml") << "version: '3'\n" << plain;
  CHECK(loadServicesFile((dir / "stack.yaml").string()).value().format == "native");
  CHECK(loadServicesFile((dir / "docker-compose.prod.yml").string()).value().format == "compose");
  CHECK(loadServicesFile((dir / "keys.yaml").string()).value().format == "compose");
  ServicesLoadOptions forced;
  forced.format = ServicesLoadOptions::Format::Compose;
  CHECK(loadServicesFile((dir / "stack.yaml").string(), forced).value().format == "compose");
  std::filesystem::remove_all(dir);
}

TEST_CASE("unsupported compose keys are errors, or warnings when asked", "[services][compose]") {
  const std::string yaml = "services:\n  a:\n    image: x\n    privileged: true\n    cap_add: [NET_ADMIN]\n";
  CHECK_THAT(errorOf(yaml), Catch::Contains("docker-compose.yml:4:5") && Catch::Contains("'services.a.privileged' is not supported") &&
                                Catch::Contains("services.compose_unsupported: warn"));
  auto o = withEnv({});
  o.unsupported_as_warnings = true;
  auto r = compose(yaml, o);
  REQUIRE(r.ok());
  REQUIRE(r.value().warnings.size() == 2);
  CHECK_THAT(r.value().warnings[0], Catch::Contains("services.a.privileged") && Catch::Contains("ignored"));
  CHECK_THAT(r.value().warnings[1], Catch::Contains("services.a.cap_add"));
}

// Every file in tests/fuzz/compose/bad-* starts with "# expect: TEXT": reading it must fail
// with TEXT in the message (and a file:line for the key); good-* files must read.
TEST_CASE("the compose corpus: each bad file gets its error, each good file reads", "[services][compose]") {
  const std::filesystem::path dir = std::string(DSPY_SOURCE_DIR) + "/tests/fuzz/compose";
  int bad = 0, good = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const std::string text = readFile(e.path());
    INFO(name);
    auto r = parseCompose(text, name, dir.string(), withEnv({}));
    if (name.rfind("bad-", 0) == 0) {
      ++bad;
      const auto nl = text.find('\n');
      REQUIRE(text.rfind("# expect: ", 0) == 0);
      const std::string expect = text.substr(10, nl - 10);
      REQUIRE_FALSE(r.ok());
      CHECK_THAT(r.error(), Catch::Contains(expect));
      CHECK_THAT(r.error(), Catch::Contains(name + ":"));
    } else if (name.rfind("good-", 0) == 0) {
      ++good;
      CHECK(r.ok());
    }
  }
  CHECK(bad >= 20);
  CHECK(good >= 2);
}
