// Workflow specs: the contract's JSON and the same in YAML, and every validation error
// naming where it is.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>
#include <sstream>

#include "orchestrator/workflows/WorkflowSpec.h"

using namespace dspy::orchestrator;

namespace {

const char* kDiamond = R"({
  "id": "diamond", "name": "Diamond", "tags": ["demo"], "failure_policy": "continue",
  "defaults": {"retry": {"max_attempts": 2, "initial_interval_ms": 100}, "timeout_seconds": 30},
  "nodes": [
    {"id": "a", "type": "task", "task": {"class": "cpu_short", "payload": {"command": "echo"}}},
    {"id": "b", "name": "Left", "type": "signature", "signature": {"prompt": "p", "execution_domain": "gpu"}},
    {"id": "c", "type": "verifier", "verifier": {"command": "pytest", "weight": 0.5}, "timeout_seconds": 5,
     "retry": {"max_attempts": 3}},
    {"id": "d", "type": "reward", "reward": {"metric": "accuracy"}}
  ],
  "edges": [
    {"id": "e1", "source": "a", "target": "b", "kind": "data"},
    {"id": "e2", "source": "a", "target": "c"},
    {"source": "b", "target": "d", "kind": "reward"},
    {"source": "c", "target": "d", "kind": "control"}
  ]
})";

std::string errorOf(const std::string& text, SpecLimits limits = {}) {
  auto r = parseWorkflowSpec(text, limits);
  if (r.ok()) return "accepted";
  CHECK(r.kind() == dspy::ErrorKind::InvalidArgument);
  return r.error();
}

// The diamond with one node's JSON replaced.
std::string withNode(const std::string& node_c) {
  std::string s = kDiamond;
  const std::string last = R"("retry": {"max_attempts": 3}})";
  const auto from = s.find(R"({"id": "c")");
  const auto to = s.find(last) + last.size();
  return s.substr(0, from) + node_c + s.substr(to);
}

}  // namespace

TEST_CASE("a diamond in the contract's JSON parses with its defaults, policies and edges", "[workflow-spec]") {
  auto r = parseWorkflowSpec(kDiamond);
  REQUIRE(r.ok());
  const auto& s = r.value();
  CHECK(s.id == "diamond");
  CHECK(s.name == "Diamond");
  CHECK(s.tags == std::vector<std::string>{"demo"});
  CHECK(s.failure_policy == FailurePolicy::Continue);
  CHECK(s.default_retry.max_attempts == 2);
  CHECK(s.default_retry.initial_interval == std::chrono::milliseconds(100));
  CHECK(s.default_timeout == std::chrono::seconds(30));
  REQUIRE(s.nodes.size() == 4);
  CHECK(s.node("a")->name == "a");  // a missing name is the id
  CHECK(s.node("b")->name == "Left");
  CHECK(s.node("b")->config["execution_domain"] == "gpu");
  CHECK(s.node("c")->timeout == std::chrono::seconds(5));
  CHECK(s.node("c")->retry->max_attempts == 3);
  CHECK_FALSE(s.node("a")->retry.has_value());
  CHECK(s.edges[2].id == "e3");  // a missing edge id is generated
  CHECK(s.edges[3].kind == "control");
  CHECK(s.dependencies("d") == std::vector<std::string>{"b", "c"});
  CHECK(s.dependencies("a").empty());
  CHECK(s.document["nodes"].size() == 4);
}

TEST_CASE("the same workflow in YAML parses to the same spec", "[workflow-spec]") {
  const char* yaml = R"(
id: diamond
name: Diamond
nodes:
  - {id: a, type: task, task: {class: cpu_short, payload: {command: echo, count: 3, quoted: "3"}}}
  - id: b
    type: services
    services: {services: [redis, redb]}
edges:
  - {source: a, target: b}
)";
  auto r = parseWorkflowSpec(yaml);
  REQUIRE(r.ok());
  CHECK(r.value().node("a")->config["payload"]["count"] == 3);
  CHECK(r.value().node("a")->config["payload"]["quoted"] == "3");
  CHECK(r.value().node("b")->config["services"].size() == 2);
  CHECK(r.value().dependencies("b") == std::vector<std::string>{"a"});
}

TEST_CASE("every spec error says where and what", "[workflow-spec]") {
  CHECK(errorOf("[1, 2").rfind("the spec is neither JSON nor YAML: yaml-cpp: error at line 1", 0) == 0);
  CHECK(errorOf("[]") == "the spec must be an object with nodes and edges");
  CHECK(errorOf(R"({"nodes": []})") == "name is required");
  CHECK(errorOf(R"({"name": "x", "nodes": []})") == "nodes must be a non-empty list");
  CHECK(errorOf(R"({"name": "x", "nodes": [{"type": "task"}]})") == "node 1: id is required");
  CHECK(errorOf(R"({"name": "x", "nodes": [{"id": "a b", "type": "task"}]})").rfind("node 'a b': bad id", 0) == 0);
  CHECK(errorOf(R"({"name": "x", "nodes": [{"id": "a", "type": "magic", "magic": {}}]})") ==
        "node 'a': unknown type 'magic' (signature, verifier, reward, training, deployment, custom, task, services)");
  CHECK(errorOf(R"({"name": "x", "nodes": [{"id": "a", "type": "training"}]})") == "node 'a': needs a 'training' object");
  CHECK(errorOf(R"({"name": "x", "nodes": [{"id": "a", "type": "training", "training": {"method": "sft"}}]})") ==
        "node 'a': training.skill is required");
  CHECK(errorOf(R"({"name": "x", "nodes": [{"id": "a", "type": "custom", "custom": {}}]})") ==
        "node 'a': custom must be a non-empty object");
  CHECK(errorOf(R"({"name": "x", "nodes": [{"id": "a", "type": "services", "services": {"services": []}}]})") ==
        "node 'a': services.services must be a non-empty list of service names");
  CHECK(errorOf(withNode(R"({"id": "c", "type": "reward", "reward": {"metric": "m", "task": {"payload": {}}}})")) ==
        "node 'c': reward.task must be an object with a class");
  CHECK(errorOf(withNode(R"({"id": "c", "type": "verifier", "verifier": {"command": "t", "weight": -1}})")) ==
        "node 'c': verifier.weight must be a number >= 0");
  CHECK(errorOf(withNode(R"({"id": "c", "type": "verifier", "verifier": {"command": "t"}, "retry": {"max_attempts": 0}})")) ==
        "node 'c': retry.max_attempts must be a whole number from 1 to 100");
  CHECK(errorOf(withNode(R"({"id": "c", "type": "verifier", "verifier": {"command": "t"}, "retry": {"tries": 2}})")) ==
        "node 'c': unknown key retry.tries (max_attempts, initial_interval_ms, multiplier, max_interval_ms)");
  CHECK(errorOf(withNode(R"({"id": "c", "type": "verifier", "verifier": {"command": "t"}, "timeout_seconds": 0})")) ==
        "node 'c': timeout_seconds must be a whole number of seconds from 1 to 604800");
  CHECK(errorOf(withNode(R"({"id": "a", "type": "reward", "reward": {"metric": "m"}})")) == "node 'a': duplicate node id");
}

TEST_CASE("edges must join known nodes once, without cycles", "[workflow-spec]") {
  const std::string nodes = R"("name": "x", "nodes": [{"id": "a", "type": "custom", "custom": {"k": 1}},
    {"id": "b", "type": "custom", "custom": {"k": 1}}, {"id": "c", "type": "custom", "custom": {"k": 1}}])";
  auto spec = [&](const std::string& edges) { return "{" + nodes + R"(, "edges": )" + edges + "}"; };
  CHECK(errorOf(spec(R"([{"id": "e1", "source": "a", "target": "nope"}])")) == "edge 'e1': unknown target 'nope'");
  CHECK(errorOf(spec(R"([{"id": "e1", "target": "a"}])")) == "edge 'e1': source is required");
  CHECK(errorOf(spec(R"([{"id": "e1", "source": "a", "target": "a"}])")) == "edge 'e1': connects node 'a' to itself");
  CHECK(errorOf(spec(R"([{"id": "e1", "source": "a", "target": "b", "kind": "magic"}])")) ==
        "edge 'e1': unknown kind 'magic' (data, control, reward)");
  CHECK(errorOf(spec(R"([{"id": "e1", "source": "a", "target": "b"}, {"id": "e1", "source": "b", "target": "c"}])")) ==
        "edge 'e1': duplicate edge id");
  CHECK(errorOf(spec(R"([{"source": "a", "target": "b"}, {"source": "a", "target": "b"}])")) ==
        "edge 'e2': duplicates the edge a -> b");
  CHECK(errorOf(spec(R"([{"source": "a", "target": "b"}, {"source": "b", "target": "c"}, {"source": "c", "target": "a"}])")) ==
        "cycle: a -> b -> c -> a");
  CHECK(errorOf(spec(R"([{"source": "a", "target": "b"}, {"source": "a", "target": "c"}])")) == "accepted");
}

TEST_CASE("size limits apply before anything else", "[workflow-spec]") {
  CHECK(errorOf(kDiamond, SpecLimits{.max_nodes = 3}) == "4 nodes, over the limit of 3 (workflows.max_nodes)");
  CHECK(errorOf(kDiamond, SpecLimits{.max_bytes = 100}).rfind("the spec is ", 0) == 0);
  CHECK(errorOf(std::string(5000, '[')) != "accepted");  // deep nesting: an error, not a crash
}

TEST_CASE("the shipped example workflows parse", "[workflow-spec]") {
  for (const char* name : {"diamond.yaml", "agent-loop.json"}) {
    std::ifstream in(std::string(DSPY_SOURCE_DIR) + "/deploy/workflows/" + name);
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    auto r = parseWorkflowSpec(text.str());
    INFO(name << ": " << (r.ok() ? "" : r.error()));
    CHECK(r.ok());
  }
}

TEST_CASE("mutated specs never crash the parser: each is accepted or refused with a reason", "[workflow-spec]") {
  // A small fuzz corpus in the test itself: the diamond with bytes dropped, repeated,
  // flipped and spliced, from a fixed seed. Each result must be a spec or an error.
  std::mt19937 rng(20261127);
  const std::string base = kDiamond;
  int accepted = 0, refused = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string s = base;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      const std::size_t at = rng() % s.size();
      switch (rng() % 4) {
        case 0: s.erase(at, 1 + rng() % 8); break;
        case 1: s.insert(at, s.substr(at, 1 + rng() % 16)); break;
        case 2: s[at] = static_cast<char>(rng() % 256); break;
        default: s.insert(at, std::string(1 + rng() % 40, "[{\"]}:,"[rng() % 7])); break;
      }
    }
    auto r = parseWorkflowSpec(s);
    if (r.ok()) {
      ++accepted;
      CHECK_FALSE(r.value().nodes.empty());
    } else {
      ++refused;
      CHECK_FALSE(r.error().empty());
    }
  }
  CHECK(accepted + refused == 3000);
  CHECK(refused > 0);
}
