// Pure task rules: id syntax, generated ids, request identity, retry schedule and the
// payload convention.
#include <catch2/catch.hpp>

#include <set>

#include "orchestrator/tasks/Task.h"

using namespace dspy::orchestrator;
using namespace std::chrono_literals;

TEST_CASE("task ids: allowed characters and length are checked", "[orchestrator][task]") {
  CHECK(validateTaskId("abc-1.2_x:y").ok());
  CHECK(validateTaskId(std::string(128, 'a')).ok());
  CHECK_FALSE(validateTaskId("").ok());
  CHECK_FALSE(validateTaskId(std::string(129, 'a')).ok());
  CHECK_FALSE(validateTaskId("-lead").ok());
  CHECK_FALSE(validateTaskId(".hidden").ok());
  CHECK_FALSE(validateTaskId("a/b").ok());
  CHECK_FALSE(validateTaskId("a b").ok());
  auto s = validateTaskId(std::string("a\x01", 2));
  REQUIRE_FALSE(s.ok());
  CHECK(s.kind() == dspy::ErrorKind::InvalidArgument);
  CHECK_THAT(s.error(), Catch::Contains("0x01"));
}

TEST_CASE("generated task ids are valid and unique", "[orchestrator][task]") {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    const auto id = generateTaskId();
    REQUIRE(validateTaskId(id).ok());
    REQUIRE(seen.insert(id).second);
  }
}

TEST_CASE("request identity covers class, payload, priority and workflow, not the id", "[orchestrator][task]") {
  const auto base = requestHash("cpu_short", {{"k", "v"}}, 0, "");
  CHECK(base == requestHash("cpu_short", {{"k", "v"}}, 0, ""));
  CHECK(base != requestHash("cpu_long", {{"k", "v"}}, 0, ""));
  CHECK(base != requestHash("cpu_short", {{"k", "w"}}, 0, ""));
  CHECK(base != requestHash("cpu_short", {{"k", "v"}}, 1, ""));
  CHECK(base != requestHash("cpu_short", {{"k", "v"}}, 0, "wf"));
  // Length-prefixed: moving a boundary between key and value changes the hash.
  CHECK(requestHash("c", {{"ab", "c"}}, 0, "") != requestHash("c", {{"a", "bc"}}, 0, ""));
}

TEST_CASE("retry delays grow by the multiplier from the initial interval up to the cap", "[orchestrator][task]") {
  RetryPolicy p;  // Temporal-like defaults: 1 s, x2, cap 100 s
  CHECK(retryDelay(p, 1) == 0ms);
  CHECK(retryDelay(p, 2) == 1000ms);
  CHECK(retryDelay(p, 3) == 2000ms);
  CHECK(retryDelay(p, 4) == 4000ms);
  CHECK(retryDelay(p, 8) == 64000ms);
  CHECK(retryDelay(p, 9) == 100000ms);
  CHECK(retryDelay(p, 50) == 100000ms);
  RetryPolicy q{.max_attempts = 5, .initial_interval = 250ms, .multiplier = 1.5, .max_interval = 600ms};
  CHECK(retryDelay(q, 2) == 250ms);
  CHECK(retryDelay(q, 3) == 375ms);
  CHECK(retryDelay(q, 4) == 562ms);
  CHECK(retryDelay(q, 5) == 600ms);
}

TEST_CASE("task statuses round-trip through their wire names", "[orchestrator][task]") {
  for (auto s : {TaskStatus::Pending, TaskStatus::Running, TaskStatus::Completed, TaskStatus::Failed,
                 TaskStatus::Cancelled}) {
    CHECK(parseTaskStatus(toString(s)) == s);
  }
  CHECK_FALSE(parseTaskStatus("done").has_value());
  CHECK(isTerminal(TaskStatus::Cancelled));
  CHECK_FALSE(isTerminal(TaskStatus::Running));
}

TEST_CASE("payload_json members merge into the payload; bad JSON is refused", "[orchestrator][payload]") {
  auto p = dspy::expandPayload({{"a", "1"}, {"payload_json", R"({"b":"x","n":2,"l":["p","q"],"a":"over"})"}});
  REQUIRE(p.ok());
  CHECK(p.value().at("a") == "over");
  CHECK(p.value().at("b") == "x");
  CHECK(p.value().at("n") == "2");
  CHECK(p.value().count("payload_json") == 0);
  auto args = dspy::payloadStringList(p.value(), "l");
  REQUIRE(args.ok());
  CHECK(args.value() == std::vector<std::string>{"p", "q"});
  CHECK(dspy::payloadStringList(p.value(), "missing").value().empty());
  CHECK_FALSE(dspy::payloadStringList({{"l", "[1,2]"}}, "l").ok());
  CHECK_FALSE(dspy::payloadStringList({{"l", "not json"}}, "l").ok());
  CHECK_FALSE(dspy::expandPayload({{"payload_json", "{broken"}}).ok());
  CHECK_FALSE(dspy::expandPayload({{"payload_json", "[1]"}}).ok());
}
