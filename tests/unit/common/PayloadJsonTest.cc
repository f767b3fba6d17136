// payloadToJson must write exactly the text nlohmann::json(payload).dump() writes: the
// store's rows and the events' data are read back (and compared by clients) as that text.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/Payload.h"

namespace {

std::string reference(const dspy::Payload& p) { return nlohmann::json(p).dump(); }

}  // namespace

TEST_CASE("payloadToJson writes what nlohmann writes for ASCII text", "[payload]") {
  CHECK(dspy::payloadToJson({}) == "{}");
  CHECK(dspy::payloadToJson({{"", ""}}) == R"({"":""})");
  const dspy::Payload p{{"command", "echo"}, {"b", "two words"}, {"a", "1"}};
  CHECK(dspy::payloadToJson(p) == R"({"a":"1","b":"two words","command":"echo"})");
  CHECK(dspy::payloadToJson(p) == reference(p));
}

TEST_CASE("payloadToJson escapes every control character, quote and backslash as nlohmann does", "[payload]") {
  std::string all;
  for (int c = 0; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  const dspy::Payload p{{all, all}, {"q\"k\\", "/\x7f\t\n"}};
  const std::string ours = dspy::payloadToJson(p);
  CHECK(ours == reference(p));
  CHECK(ours.find("\\u001f") != std::string::npos);  // lower-case hex, as nlohmann
  CHECK(nlohmann::json::parse(ours).get<dspy::Payload>() == p);
}

TEST_CASE("payloadToJson takes nlohmann's path for text beyond ASCII, errors included", "[payload]") {
  const dspy::Payload utf8{{"name", "caf\xc3\xa9 \xe2\x82\xac"}, {"k\xc3\xa9", "v"}};
  CHECK(dspy::payloadToJson(utf8) == reference(utf8));
  const dspy::Payload invalid{{"a", "ok"}, {"b", "\xff\xfe"}};
  CHECK_THROWS_AS(dspy::payloadToJson(invalid), nlohmann::json::type_error);
}
