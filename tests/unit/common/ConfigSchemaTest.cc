// Config loading: valid, partial, malformed, unknown key, wrong type, env overrides.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

#include "common/ConfigSchema.h"
#include "env_manager/EnvManagerConfig.h"
#include "orchestrator/OrchestratorConfig.h"
#include "tests/support/Process.h"

using dspy::config::mapEnv;
using dspy::envmanager::EnvManagerConfig;

namespace {

struct Loaded {
  EnvManagerConfig cfg;
  dspy::Status status;
};

Loaded loadEnvManager(const std::string& yaml, std::map<std::string, std::string> env = {}) {
  Loaded out;
  dspy::config::Schema schema;
  dspy::envmanager::describe(schema, out.cfg);
  out.status = schema.loadText(yaml, "em.yaml", mapEnv(std::move(env)));
  return out;
}

}  // namespace

TEST_CASE("a full valid file sets every key it names", "[config]") {
  auto r = loadEnvManager(R"(
grpc:
  address: 127.0.0.1:6000
  max_message_bytes: 8388608
http:
  address: "[::1]:6001"
  max_body_bytes: 2048
auth:
  token: abc
log:
  level: debug
  format: json
)");
  REQUIRE(r.status.ok());
  CHECK(r.cfg.server.grpc_address == "127.0.0.1:6000");
  CHECK(r.cfg.server.grpc_max_message_bytes == 8388608);
  CHECK(r.cfg.server.http_address == "[::1]:6001");
  CHECK(r.cfg.server.http_max_body_bytes == 2048);
  CHECK(r.cfg.server.auth_token == "abc");
  CHECK(r.cfg.server.log.level == "debug");
  CHECK(r.cfg.server.log.format == "json");
}

TEST_CASE("a partial or empty file keeps the defaults of every key it omits", "[config]") {
  auto partial = loadEnvManager("log:\n  level: warn\n");
  REQUIRE(partial.status.ok());
  CHECK(partial.cfg.server.log.level == "warn");
  CHECK(partial.cfg.server.grpc_address == "127.0.0.1:50100");
  CHECK(partial.cfg.server.http_address == "127.0.0.1:50101");

  auto empty = loadEnvManager("");
  REQUIRE(empty.status.ok());
  CHECK(empty.cfg.server.grpc_address == "127.0.0.1:50100");

  auto empty_section = loadEnvManager("grpc:\nlog:\n  format: json\n");
  REQUIRE(empty_section.status.ok());
  CHECK(empty_section.cfg.server.grpc_address == "127.0.0.1:50100");

  dspy::orchestrator::OrchestratorConfig orch;
  dspy::config::Schema schema;
  dspy::orchestrator::describe(schema, orch);
  REQUIRE(schema.loadText("", "o.yaml", mapEnv({})).ok());
  CHECK(orch.server.grpc_address == "127.0.0.1:50052");
  CHECK(orch.server.http_address == "127.0.0.1:9097");
}

TEST_CASE("malformed YAML names file, line and column", "[config]") {
  auto r = loadEnvManager("grpc:\n  address: [unclosed\nlog: {\n");
  REQUIRE_FALSE(r.status.ok());
  CHECK_THAT(r.status.error(), Catch::Contains("em.yaml:") && Catch::Contains("YAML syntax error"));
}

TEST_CASE("an unknown key names file, line, the key and the known keys", "[config]") {
  auto r = loadEnvManager("log:\n  level: info\ngrpc:\n  adress: 127.0.0.1:1\n");
  REQUIRE_FALSE(r.status.ok());
  CHECK_THAT(r.status.error(), Catch::StartsWith("em.yaml:4:3: unknown key 'grpc.adress'"));
  CHECK_THAT(r.status.error(), Catch::Contains("address") && Catch::Contains("max_message_bytes"));

  auto top = loadEnvManager("bogus: 1\n");
  REQUIRE_FALSE(top.status.ok());
  CHECK_THAT(top.status.error(), Catch::StartsWith("em.yaml:1:1: unknown key 'bogus'"));
}

TEST_CASE("a wrong type or range names line and key", "[config]") {
  auto not_int = loadEnvManager("grpc:\n  max_message_bytes: lots\n");
  REQUIRE_FALSE(not_int.status.ok());
  CHECK_THAT(not_int.status.error(),
             Catch::StartsWith("em.yaml:2:22: key 'grpc.max_message_bytes': expected an integer, got 'lots'"));

  auto range = loadEnvManager("grpc:\n  max_message_bytes: 5\n");
  REQUIRE_FALSE(range.status.ok());
  CHECK_THAT(range.status.error(), Catch::Contains("out of range"));

  auto map_for_scalar = loadEnvManager("log:\n  level:\n    nested: 1\n");
  REQUIRE_FALSE(map_for_scalar.status.ok());
  CHECK_THAT(map_for_scalar.status.error(), Catch::Contains("key 'log.level': expected a string, got a mapping"));

  auto scalar_for_section = loadEnvManager("grpc: 5\n");
  REQUIRE_FALSE(scalar_for_section.status.ok());
  CHECK_THAT(scalar_for_section.status.error(), Catch::Contains("key 'grpc': expected a mapping"));

  auto bad_choice = loadEnvManager("log:\n  format: xml\n");
  REQUIRE_FALSE(bad_choice.status.ok());
  CHECK_THAT(bad_choice.status.error(), Catch::Contains("expected one of text, json, got 'xml'"));

  auto bad_addr = loadEnvManager("grpc:\n  address: 127.0.0.1:99999\n");
  REQUIRE_FALSE(bad_addr.status.ok());
  CHECK_THAT(bad_addr.status.error(), Catch::Contains("em.yaml:2:12") && Catch::Contains("bad port"));

  auto no_value = loadEnvManager("log:\n  level:\n");
  REQUIRE_FALSE(no_value.status.ok());
  CHECK_THAT(no_value.status.error(), Catch::Contains("em.yaml:2:3: key 'log.level'"));
}

TEST_CASE("a duplicate key is an error", "[config]") {
  auto r = loadEnvManager("log:\n  level: info\n  level: debug\n");
  REQUIRE_FALSE(r.status.ok());
  CHECK_THAT(r.status.error(), Catch::Contains("em.yaml:3:3: duplicate key 'log.level'"));
}

TEST_CASE("every error in a file is reported, not just the first", "[config]") {
  auto r = loadEnvManager("bogus: 1\nlog:\n  level: loud\n");
  REQUIRE_FALSE(r.status.ok());
  CHECK_THAT(r.status.error(), Catch::Contains("em.yaml:1:1") && Catch::Contains("em.yaml:3:10"));
}

TEST_CASE("environment variables override the file with the contract's names", "[config]") {
  auto r = loadEnvManager("grpc:\n  address: 127.0.0.1:6000\n",
                          {{"ENV_MANAGER_GRPC_ADDR", "127.0.0.1:7000"},
                           {"ENV_MANAGER_METRICS_ADDR", "127.0.0.1:7001"},
                           {"ENV_MANAGER_VERBOSE", "1"}});
  REQUIRE(r.status.ok());
  CHECK(r.cfg.server.grpc_address == "127.0.0.1:7000");
  CHECK(r.cfg.server.http_address == "127.0.0.1:7001");
  CHECK(r.cfg.server.log.level == "debug");

  dspy::orchestrator::OrchestratorConfig orch;
  dspy::config::Schema schema;
  dspy::orchestrator::describe(schema, orch);
  REQUIRE(schema.loadText("", "o.yaml",
                          mapEnv({{"ORCHESTRATOR_GRPC_ADDR", "127.0.0.1:7100"},
                                  {"ORCHESTRATOR_HTTP_ADDR", "127.0.0.1:7101"}}))
              .ok());
  CHECK(orch.server.grpc_address == "127.0.0.1:7100");
  CHECK(orch.server.http_address == "127.0.0.1:7101");
}

TEST_CASE("a bad environment value names the variable", "[config]") {
  auto r = loadEnvManager("", {{"ENV_MANAGER_GRPC_ADDR", "nowhere"}});
  REQUIRE_FALSE(r.status.ok());
  CHECK_THAT(r.status.error(), Catch::StartsWith("environment variable ENV_MANAGER_GRPC_ADDR (key 'grpc.address')"));

  auto verbose = loadEnvManager("", {{"ENV_MANAGER_VERBOSE", "maybe"}});
  REQUIRE_FALSE(verbose.status.ok());
  CHECK_THAT(verbose.status.error(), Catch::Contains("ENV_MANAGER_VERBOSE"));
}

TEST_CASE("rules across keys are checked", "[config]") {
  auto half_tls = loadEnvManager("tls:\n  cert_file: /etc/hostname\n");
  REQUIRE_FALSE(half_tls.status.ok());
  CHECK_THAT(half_tls.status.error(), Catch::Contains("must be set together"));

  auto missing_file = loadEnvManager("tls:\n  cert_file: /nonexistent/c.pem\n  key_file: /nonexistent/k.pem\n");
  REQUIRE_FALSE(missing_file.status.ok());
  CHECK_THAT(missing_file.status.error(), Catch::Contains("cannot read file '/nonexistent/c.pem'"));

  auto clear_token = loadEnvManager("auth:\n  token: t\ngrpc:\n  address: 0.0.0.0:6000\n");
  REQUIRE_FALSE(clear_token.status.ok());
  CHECK_THAT(clear_token.status.error(), Catch::Contains("needs TLS"));
}

TEST_CASE("the token file wins over the inline token and is trimmed", "[config]") {
  const std::string dir = dspy::test::tempDir();
  dspy::test::writeFile(dir + "/token", "from-file\n");
  auto r = loadEnvManager("auth:\n  token: inline\n  token_file: " + dir + "/token\n");
  REQUIRE(r.status.ok());
  CHECK(r.cfg.server.auth_token == "from-file");

  dspy::test::writeFile(dir + "/empty", "\n");
  auto empty = loadEnvManager("auth:\n  token_file: " + dir + "/empty\n");
  REQUIRE_FALSE(empty.status.ok());
  CHECK_THAT(empty.status.error(), Catch::Contains("is empty"));

  // A device named by mistake is refused at once instead of being read forever.
  auto device = loadEnvManager("auth:\n  token_file: /dev/zero\n");
  REQUIRE_FALSE(device.status.ok());
  CHECK_THAT(device.status.error(), Catch::Contains("'/dev/zero' is not a readable regular file"));
  dspy::test::writeFile(dir + "/big", std::string(5000, 'x'));
  auto big = loadEnvManager("auth:\n  token_file: " + dir + "/big\n");
  REQUIRE_FALSE(big.status.ok());
  CHECK_THAT(big.status.error(), Catch::Contains("larger than 4 KiB"));
}

TEST_CASE("a missing config file is an error that names it", "[config]") {
  auto r = dspy::envmanager::loadConfig("/nonexistent/em.yaml", mapEnv({}));
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error(), Catch::StartsWith("/nonexistent/em.yaml: cannot open config file"));
}

TEST_CASE("schema binders convert lists, numbers, booleans and custom subtrees", "[config]") {
  std::vector<std::string> list;
  double ratio = 0;
  bool flag = false;
  std::string seen_custom;
  dspy::config::Schema schema;
  schema.stringList("a.list", &list, "LIST_ENV");
  schema.number("a.ratio", &ratio, 0.0, 1.0);
  schema.boolean("a.flag", &flag, "FLAG_ENV");
  schema.custom("b", [&](const YAML::Node&, const std::string&, const std::string& path) {
    seen_custom = path;
    return dspy::Status::Ok();
  });
  REQUIRE(schema.loadText("a:\n  list: [x, y]\n  ratio: 0.25\n  flag: yes\nb: {anything: 1}\n", "t.yaml", mapEnv({}))
              .ok());
  CHECK(list == std::vector<std::string>{"x", "y"});
  CHECK(ratio == Approx(0.25));
  CHECK(flag);
  CHECK(seen_custom == "b");

  REQUIRE(schema.loadText("", "t.yaml", mapEnv({{"LIST_ENV", " p, q ,,r"}, {"FLAG_ENV", "off"}})).ok());
  CHECK(list == std::vector<std::string>{"p", "q", "r"});
  CHECK_FALSE(flag);

  auto bad_list = schema.loadText("a:\n  list: [x, {y: 1}]\n", "t.yaml", mapEnv({}));
  REQUIRE_FALSE(bad_list.ok());
  CHECK_THAT(bad_list.error(), Catch::Contains("an item is a mapping"));
  auto bad_ratio = schema.loadText("a:\n  ratio: 1.5\n", "t.yaml", mapEnv({}));
  REQUIRE_FALSE(bad_ratio.ok());
  CHECK_THAT(bad_ratio.error(), Catch::Contains("out of range"));
  auto nan_ratio = schema.loadText("a:\n  ratio: nan\n", "t.yaml", mapEnv({}));
  REQUIRE_FALSE(nan_ratio.ok());
}

TEST_CASE("endpoints parse host:port and [v6]:port", "[config]") {
  auto v4 = dspy::config::parseEndpoint("127.0.0.1:80");
  REQUIRE(v4.ok());
  CHECK(v4.value().host == "127.0.0.1");
  CHECK(v4.value().port == 80);
  auto v6 = dspy::config::parseEndpoint("[::1]:443");
  REQUIRE(v6.ok());
  CHECK(v6.value().host == "::1");
  CHECK_FALSE(dspy::config::parseEndpoint(":80").ok());
  CHECK_FALSE(dspy::config::parseEndpoint("host").ok());
  CHECK_FALSE(dspy::config::parseEndpoint("host:-1").ok());
  CHECK_FALSE(dspy::config::parseEndpoint("[::1]443").ok());
}

TEST_CASE("values() shows every typed key's current value as JSON text", "[config]") {
  EnvManagerConfig cfg;
  dspy::config::Schema schema;
  dspy::envmanager::describe(schema, cfg);
  REQUIRE(schema
              .loadText("grpc:\n  address: 127.0.0.1:6000\nservices:\n  autostart: [redis, redb]\nlog:\n"
                        "  level: debug\nauth:\n  token: 'a\"b\\c'\n",
                        "em.yaml", mapEnv({{"ENV_MANAGER_MAX_CONCURRENT", "7"}}))
              .ok());
  std::map<std::string, std::string> v;
  for (const auto& [k, text] : schema.values()) v[k] = text;
  CHECK(v.at("grpc.address") == "\"127.0.0.1:6000\"");
  CHECK(v.at("services.autostart") == R"(["redis","redb"])");
  CHECK(v.at("auth.token") == R"("a\"b\\c")");
  CHECK(v.at("lifecycle.max_concurrent") == "7");
  CHECK(v.at("log.level") == "\"debug\"");
  CHECK(v.at("docker.timeout_seconds") == "30");
  CHECK(v.size() == schema.keys().size() - schema.customKeys().size());
  CHECK(schema.envOf("lifecycle.max_concurrent") == "ENV_MANAGER_MAX_CONCURRENT");
  CHECK(schema.envOf("docker.timeout_seconds").empty());
  const auto custom = schema.customKeys();
  CHECK(std::find(custom.begin(), custom.end(), "tasks.classes") != custom.end());
}
