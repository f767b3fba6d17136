// The one integer parser and the stable hash.
#include <catch2/catch.hpp>

#include "common/Text.h"
#include "orchestrator/tasks/Task.h"

using dspy::parseInt;

TEST_CASE("parseInt takes whole base-10 integers within bounds and nothing else", "[text]") {
  CHECK(parseInt("0") == 0);
  CHECK(parseInt("-42") == -42);
  CHECK(parseInt("9223372036854775807") == INT64_MAX);
  for (const char* bad : {"", " 1", "1 ", "+1", "1x", "0x10", "1.5", "99999999999999999999", "--1"}) {
    INFO(bad);
    CHECK_FALSE(parseInt(bad).has_value());
  }
  CHECK(parseInt("65535", 1, 65535) == 65535);
  CHECK_FALSE(parseInt("65536", 1, 65535).has_value());
  CHECK_FALSE(parseInt("0", 1, 65535).has_value());
}

TEST_CASE("the stable hash keeps the values stored by earlier versions", "[text]") {
  CHECK(dspy::StableHash().hex() == "14650fb0739d0383");
  CHECK(dspy::StableHash().add("a").hex() == "44bd8ad473cd9906");
  // Field framing: ("ab", "c") and ("a", "bc") differ.
  CHECK(dspy::StableHash().addField("ab").addField("c").value() !=
        dspy::StableHash().addField("a").addField("bc").value());
  // A request hash as the task store has kept it since schema version 1.
  CHECK(dspy::orchestrator::requestHash("cpu_short", {{"k", "v"}}, 0, "") == "a3e3730009626dc1");
}

TEST_CASE("nesting depth is measured outside strings, in one pass", "[text]") {
  using dspy::nestedDeeperThan;
  CHECK_FALSE(nestedDeeperThan(R"({"a": [1, {"b": 2}]})", 3));
  CHECK(nestedDeeperThan(R"({"a": [1, {"b": [2]}]})", 3));
  CHECK_FALSE(nestedDeeperThan(R"({"a": "[[[[[[[[[[[[", "b": "\"[[[["})", 1));  // brackets in strings do not count
  CHECK_FALSE(nestedDeeperThan("[]]]]]][]", 1));                                    // stray closers do not go negative
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  CHECK(nestedDeeperThan(deep));
  CHECK_FALSE(nestedDeeperThan(std::string(100, '[') + std::string(100, ']')));
  CHECK(nestedDeeperThan(std::string(101, '{')));
  CHECK_THAT(dspy::tooDeepMessage("the spec"), Catch::Contains("deeper than 100 levels"));
}
