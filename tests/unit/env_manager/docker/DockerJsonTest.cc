// The Engine's JSON answers: normal ones read field by field; fields of the wrong type,
// out of range or missing read as defaults, never as an exception (these run inside
// libcurl callbacks, where an exception would end the daemon).
#include <catch2/catch.hpp>

#include "env_manager/docker/DockerJson.h"

using namespace dspy::envmanager::docker;

TEST_CASE("inspect, list, stats, pull and event answers read as Docker sends them", "[docker][json]") {
  auto info = parseInspect(R"({"Id":"abc","Name":"/proj-redis","Config":{"Image":"redis:7","Labels":{"a":"1"}},
    "State":{"Status":"running","Running":true,"ExitCode":0,"OOMKilled":false,"StartedAt":"2026-01-02T03:04:05.5Z",
    "FinishedAt":"0001-01-01T00:00:00Z","Health":{"Status":"healthy"}},
    "NetworkSettings":{"Networks":{"proj":{"IPAddress":"172.18.0.2"}}}})");
  CHECK(info.id == "abc");
  CHECK(info.name == "proj-redis");
  CHECK(info.image == "redis:7");
  CHECK(info.labels.at("a") == "1");
  CHECK(info.running);
  CHECK(info.started_at == 1767323045);
  CHECK(info.finished_at == 0);
  CHECK(info.health == "healthy");
  CHECK(info.network_ips.at("proj") == "172.18.0.2");

  auto list = parseContainerList(R"([{"Id":"x","Names":["/n"],"Image":"i","State":"exited","Labels":{"k":"v"}}])");
  REQUIRE(list.ok());
  REQUIRE(list.value().size() == 1);
  CHECK(list.value()[0].name == "n");
  CHECK(list.value()[0].labels.at("k") == "v");
  CHECK_FALSE(parseContainerList("{}").ok());

  auto st = parseStats(R"({"cpu_stats":{"cpu_usage":{"total_usage":300},"system_cpu_usage":2000,"online_cpus":2},
    "precpu_stats":{"cpu_usage":{"total_usage":100},"system_cpu_usage":1000},
    "memory_stats":{"usage":5000,"stats":{"inactive_file":1000}},"networks":{"eth0":{"rx_bytes":7,"tx_bytes":9}}})");
  CHECK(st.cpu_percent == Approx(40.0));
  CHECK(st.memory_bytes == 4000);
  CHECK(st.network_rx_bytes == 7);
  CHECK(st.network_tx_bytes == 9);

  auto pull = parsePullLine(R"({"status":"Downloading","progressDetail":{"current":10,"total":100},"id":"l1"})");
  REQUIRE(pull);
  CHECK(pull->progress.status == "Downloading");
  CHECK(pull->progress.total == 100);
  CHECK_FALSE(pull->error);
  auto failed = parsePullLine(R"({"error":"manifest unknown","errorDetail":{}})");
  REQUIRE(failed);
  CHECK(failed->error == "manifest unknown");
  CHECK_FALSE(parsePullLine("not json"));

  auto ev = parseEventLine(R"({"Type":"container","Action":"die","timeNano":123,
    "Actor":{"ID":"c1","Attributes":{"exitCode":"3","name":"x"}}})");
  REQUIRE(ev);
  CHECK(ev->action == "die");
  CHECK(ev->attributes.at("exitCode") == "3");
  CHECK(parseWaitStatus(R"({"StatusCode":4})") == 4);
  CHECK(parseTty(R"({"Config":{"Tty":true}})"));
  CHECK(parseId(R"({"Id":"e1"})") == "e1");
  CHECK(parseExecExitCode(R"({"ExitCode":2})") == 2);
  auto nets = parseNetworksNamed(R"([{"Name":"a","Created":"2","Id":"n2"},{"Name":"b"},{"Name":"a","Created":"1","Id":"n1"}])", "a");
  CHECK(nets.size() == 2);
}

TEST_CASE("fields of the wrong type or out of range read as defaults, never as an exception", "[docker][json]") {
  // Found by the fuzzer: a pull progress line with a number where Docker sends a string.
  auto pull = parsePullLine(R"({"status":111111111111111,"id":["x"],"progressDetail":{"current":"10","total":1e300}})");
  REQUIRE(pull);
  CHECK(pull->progress.status.empty());
  CHECK(pull->progress.layer.empty());
  CHECK(pull->progress.current == 0);
  CHECK(pull->progress.total == 0);  // 1e300 does not fit: default, not undefined behaviour
  auto odd_error = parsePullLine(R"({"error":{"code":1}})");
  REQUIRE(odd_error);
  CHECK(odd_error->error == R"({"code":1})");

  auto info = parseInspect(R"({"Id":1,"Name":null,"Config":{"Labels":{"a":1,"b":"2"}},"State":{"Running":"yes",
    "ExitCode":99999999999,"StartedAt":5,"Health":"x"},"NetworkSettings":{"Networks":{"n":{"IPAddress":[]}}}})");
  CHECK(info.id.empty());
  CHECK_FALSE(info.running);
  CHECK(info.exit_code == 0);
  CHECK(info.labels.size() == 1);
  CHECK(info.network_ips.at("n").empty());
  CHECK(parseInspect("[1,2]").id.empty());

  auto list = parseContainerList(R"([1,{"Id":"x","Names":[5],"Labels":{"k":[]}},{"Names":"n"}])");
  REQUIRE(list.ok());
  CHECK(list.value().size() == 2);
  CHECK(list.value()[0].name.empty());
  CHECK(list.value()[0].labels.empty());

  auto st = parseStats(R"({"cpu_stats":[],"memory_stats":{"usage":-5,"stats":{"inactive_file":"x"}},
    "networks":{"a":{"rx_bytes":9223372036854775807},"b":{"rx_bytes":9223372036854775807}}})");
  CHECK(st.cpu_percent == 0);
  CHECK(st.memory_bytes == 0);
  CHECK(st.network_rx_bytes == 9223372036854775807);  // not overflowed

  auto ev = parseEventLine(R"({"Type":5,"timeNano":"now","Actor":{"ID":{},"Attributes":[]}})");
  REQUIRE(ev);
  CHECK(ev->type.empty());
  CHECK(ev->time_ns == 0);
  CHECK(parseWaitStatus(R"({"StatusCode":"0"})") == -1);
  CHECK(parseWaitStatus(R"({"StatusCode":1e20})") == -1);
  CHECK_FALSE(parseTty(R"({"Config":{"Tty":"true"}})"));
  CHECK(parseId("nonsense").empty());
  CHECK(parseId(R"({"Id":42})").empty());  // a create answer with a non-string Id: refused, not thrown
  CHECK(parseExecExitCode(R"({"ExitCode":null})") == -1);
  CHECK(parseNetworksNamed(R"({"Name":"a"})", "a").empty());
}
