// Services file parsing: the default stack, and every validation error with its line.
#include <catch2/catch.hpp>

#include "env_manager/lifecycle/ServiceGraph.h"
#include "env_manager/services/ServiceSpec.h"

using namespace dspy::envmanager;

namespace {
std::string errorOf(const std::string& yaml) {
  auto r = parseServices(yaml, "s.yaml");
  REQUIRE_FALSE(r.ok());
  return r.error();
}
}  // namespace

TEST_CASE("the built-in default is the nine services with their graph", "[services]") {
  auto f = parseServices(defaultServicesYaml(), "services.yaml");
  REQUIRE(f.ok());
  CHECK(f.value().services.size() == 9);
  CHECK(f.value().network == "dspy-agent");
  ServiceGraph g(f.value());
  CHECK(g.depth("redis") == 0);
  CHECK(g.depth("kafka") == 1);
  CHECK(g.depth("infermesh-node-a") == 1);
  CHECK(g.depth("infermesh-router") == 2);
  const auto* kafka = f.value().find("kafka");
  REQUIRE(kafka != nullptr);
  CHECK(kafka->depends_on.at(0).condition == DependencySpec::Condition::Healthy);
  CHECK(kafka->ports.at(0).host_ip == "127.0.0.1");
  CHECK(kafka->ports.at(0).host_port == 9092);
  CHECK(kafka->ports.at(0).container_port == 9092);
  CHECK(f.value().find("redis")->required);
  CHECK_FALSE(f.value().find("ollama")->required);
  CHECK(f.value().find("prometheus")->volumes.at(1).bind());
  CHECK(f.value().find("prometheus")->volumes.at(1).read_only);
}

TEST_CASE("the local twin stack mirrors the default's names, ports, graph, checks and required flags", "[services]") {
  auto real = parseServices(defaultServicesYaml(), "services.yaml");
  auto local = loadServicesFile(std::string(DSPY_SOURCE_DIR) + "/deploy/config/services.local.yaml");
  REQUIRE(real.ok());
  REQUIRE(local.ok());
  REQUIRE(real.value().names() == local.value().names());
  for (const auto& r : real.value().services) {
    const auto* l = local.value().find(r.name);
    INFO(r.name);
    CHECK(l->required == r.required);
    CHECK(l->healthcheck.kind == r.healthcheck.kind);
    CHECK(l->healthcheck.port == r.healthcheck.port);
    CHECK(l->healthcheck.path == r.healthcheck.path);
    REQUIRE(l->ports.size() == r.ports.size());
    for (std::size_t i = 0; i < r.ports.size(); ++i) CHECK(l->ports[i].host_port == r.ports[i].host_port);
    REQUIRE(l->depends_on.size() == r.depends_on.size());
    for (std::size_t i = 0; i < r.depends_on.size(); ++i) {
      CHECK(l->depends_on[i].service == r.depends_on[i].service);
      CHECK(l->depends_on[i].condition == r.depends_on[i].condition);
    }
  }
}

TEST_CASE("service definitions accept the compose-like forms", "[services]") {
  auto f = parseServices(R"(
services:
  a:
    image: img:1
    command: run --fast
    environment: ["K=V", "EMPTY="]
    ports: ["8080:80", "0.0.0.0:9000:9000/udp", "7000"]
    volumes: ["data:/data", "/etc/x:/x:ro"]
    healthcheck: {kind: exec, command: [true], interval: 250ms, timeout: 1s, start_period: 2m, retries: 2}
    restart: {policy: always, backoff_initial: 100ms, backoff_max: 1s, max_restarts: 2}
    cpus: 0.5
    memory: 256m
    stop_grace_period: 3
  b:
    image: img:2
    depends_on: {a: {condition: service_completed_successfully}}
    labels: {team: infra}
)", "s.yaml");
  REQUIRE(f.ok());
  const auto& a = *f.value().find("a");
  CHECK(a.command == std::vector<std::string>{"run", "--fast"});
  CHECK(a.environment.at("K") == "V");
  CHECK(a.environment.at("EMPTY").empty());
  CHECK(a.ports[0].host_ip == "127.0.0.1");
  CHECK(a.ports[1].protocol == "udp");
  CHECK(a.ports[2].host_port == 0);
  CHECK(a.healthcheck.interval == std::chrono::milliseconds(250));
  CHECK(a.healthcheck.start_period == std::chrono::minutes(2));
  CHECK(a.restart.policy == RestartSpec::Policy::Always);
  CHECK(a.memory_bytes == 256LL * 1024 * 1024);
  CHECK(a.stop_grace_period == std::chrono::seconds(3));
  CHECK(f.value().find("b")->depends_on[0].condition == DependencySpec::Condition::CompletedSuccessfully);
  CHECK(a.definitionHash("n") == a.definitionHash("n"));
  CHECK(a.definitionHash("n") != a.definitionHash("other"));
}

TEST_CASE("services validation names file, line and problem", "[services]") {
  CHECK_THAT(errorOf("services:\n  a:\n    image: x\n    imgae: y\n"),
             Catch::StartsWith("s.yaml:4:5: unknown key 'services.a.imgae'"));
  CHECK_THAT(errorOf("services:\n  a:\n    image: x\n    cpus: many\n"),
             Catch::Contains("s.yaml:4:11: key 'services.a.cpus': expected a number"));
  CHECK_THAT(errorOf("services:\n  a:\n    image: x\n    depends_on: [ghost]\n"),
             Catch::Contains("s.yaml:4:18: service 'a' depends on unknown service 'ghost'"));
  CHECK_THAT(errorOf("services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [c]}\n"
                     "  c: {image: x, depends_on: [a]}\n"),
             Catch::Contains("dependency cycle: a -> b -> c -> a"));
  CHECK_THAT(errorOf("services:\n  a: {image: x, ports: [\"8080:80\"]}\n  b: {image: y, ports: [\"8080:81\"]}\n"),
             Catch::Contains("services 'a' and 'b' both publish host port 8080/tcp"));
  CHECK_THAT(errorOf("services:\n  a: {image: x, ports: [\"80:99999\"]}\n"), Catch::Contains("s.yaml:2:25"));
  CHECK_THAT(errorOf("services:\n  a: {image: x, volumes: [\"./rel:/x\"]}\n"),
             Catch::Contains("relative paths are refused"));
  CHECK_THAT(errorOf("services:\n  a: {command: x}\n"), Catch::Contains("'image' is required"));
  CHECK_THAT(errorOf("services:\n  a: {image: x, healthcheck: {kind: http}}\n"), Catch::Contains("needs 'port'"));
  CHECK_THAT(errorOf("services:\n  a: {image: x, healthcheck: {kind: tcp, port: 1, interval: soon}}\n"),
             Catch::Contains("expected a duration"));
  CHECK_THAT(errorOf("services:\n  A_B: {image: x}\n"), Catch::Contains("service name 'A_B'"));
  CHECK_THAT(errorOf("services:\n  a: {image: x, depends_on: {b: {condition: whenever}}}\n  b: {image: x}\n"),
             Catch::Contains("expected service_started, service_healthy or service_completed_successfully"));
  CHECK_THAT(errorOf("services:\n  a: {image: x, memory: 5q}\n"), Catch::Contains("unknown unit"));
  CHECK_THAT(errorOf("services: [\n"), Catch::Contains("YAML syntax error"));
  CHECK_THAT(errorOf("services: {}\n"), Catch::Contains("no services defined"));
}

TEST_CASE("durations and sizes parse strictly", "[services]") {
  CHECK(parseDuration("1.5s").value() == std::chrono::milliseconds(1500));
  CHECK(parseDuration("2").value() == std::chrono::seconds(2));
  CHECK(parseDuration("1h").value() == std::chrono::hours(1));
  CHECK_FALSE(parseDuration("fast").ok());
  CHECK_FALSE(parseDuration("1d").ok());
  CHECK_FALSE(parseDuration("9999h").ok());
  CHECK(parseByteSize("1g").value() == 1024LL * 1024 * 1024);
  CHECK(parseByteSize("512").value() == 512);
  CHECK_FALSE(parseByteSize("-1").ok());
  CHECK_FALSE(parseByteSize("99999999999999999999999g").ok());  // too large: refused, not 0
}

TEST_CASE("graph closures go down for start and up for stop", "[services]") {
  auto f = parseServices(defaultServicesYaml(), "services.yaml");
  ServiceGraph g(f.value());
  auto start = g.startClosure({"infermesh-router"});
  REQUIRE(start.ok());
  CHECK(start.value() == std::set<std::string>{"redis", "infermesh-node-a", "infermesh-node-b", "infermesh-router"});
  auto stop = g.stopClosure({"zookeeper"});
  CHECK(stop.value() == std::set<std::string>{"zookeeper", "kafka"});
  CHECK(g.startClosure({}).value().size() == 9);
  CHECK_FALSE(g.startClosure({"ghost"}).ok());
  auto order = g.topologicalOrder();
  auto pos = [&](const std::string& n) { return std::find(order.begin(), order.end(), n) - order.begin(); };
  CHECK(pos("redis") < pos("infermesh-node-a"));
  CHECK(pos("zookeeper") < pos("kafka"));
}
