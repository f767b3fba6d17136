// Docker stream decoding: multiplexed frames split anywhere, timestamps, JSON lines.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "env_manager/docker/DockerClient.h"
#include "env_manager/docker/StreamDecoders.h"

using namespace dspy::envmanager::docker;

namespace {
std::string frame(int stream, const std::string& payload) {
  std::string h(8, '\0');
  h[0] = static_cast<char>(stream);
  const auto n = payload.size();
  h[4] = static_cast<char>((n >> 24) & 0xff);
  h[5] = static_cast<char>((n >> 16) & 0xff);
  h[6] = static_cast<char>((n >> 8) & 0xff);
  h[7] = static_cast<char>(n & 0xff);
  return h + payload;
}
}  // namespace

TEST_CASE("multiplexed log frames decode into lines whatever the split", "[docker]") {
  const std::string bytes = frame(1, "2024-01-02T03:04:05.000000001Z hello\n2024-01-02T03:04:06Z wor") +
                            frame(1, "ld\n") + frame(2, "2024-01-02T03:04:07.5Z oops\n");
  for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{7}, bytes.size()}) {
    LogDecoder d(true, true);
    std::vector<LogLine> lines;
    for (std::size_t i = 0; i < bytes.size(); i += chunk) {
      REQUIRE(d.feed(std::string_view(bytes).substr(i, chunk), [&](const LogLine& l) {
        lines.push_back(l);
        return true;
      }));
    }
    INFO("chunk " << chunk);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0].message == "hello");
    CHECK(lines[0].stream == "stdout");
    CHECK(lines[0].timestamp_ns == 1704164645000000001LL);
    CHECK(lines[1].message == "world");
    CHECK(lines[2].stream == "stderr");
    CHECK(lines[2].timestamp_ns == 1704164647500000000LL);
    CHECK(d.pending() == 0);
  }
}

TEST_CASE("a log consumer can stop the decoding early", "[docker]") {
  LogDecoder d(false, false);
  int seen = 0;
  CHECK_FALSE(d.feed("a\nb\nc\n", [&](const LogLine&) { return ++seen < 2; }));
  CHECK(seen == 2);
}

TEST_CASE("RFC 3339 timestamps parse with fractions and offsets, and reject junk", "[docker]") {
  CHECK(parseRfc3339Nanos("1970-01-01T00:00:01Z").value() == 1'000'000'000);
  CHECK(parseRfc3339Nanos("1970-01-01T01:00:00+01:00").value() == 0);
  CHECK(parseRfc3339Nanos("1970-01-01T00:00:00.25Z").value() == 250'000'000);
  CHECK_FALSE(parseRfc3339Nanos("yesterday").has_value());
  CHECK_FALSE(parseRfc3339Nanos("1970-13-01T00:00:00Z").has_value());
  CHECK_FALSE(parseRfc3339Nanos("1970-01-01T00:00:00").has_value());
  // Past 2262 nanoseconds do not fit in 64 bits (found by the docker-streams fuzzer).
  CHECK_FALSE(parseRfc3339Nanos("3026-11-27T10:00:00.123456789Z").has_value());
  CHECK_FALSE(parseRfc3339Nanos("9999-12-31T23:59:59Z").has_value());
  CHECK(parseRfc3339Nanos("2262-01-01T00:00:00Z").has_value());
}

TEST_CASE("JSON lines split across chunks come out whole", "[docker]") {
  LineSplitter s;
  std::vector<std::string> lines;
  auto on = [&](std::string_view l) {
    lines.emplace_back(l);
    return true;
  };
  s.feed("{\"a\":1}\n{\"b\"", on);
  s.feed(":2}\r\n\n{\"c\":3}", on);
  s.finish(on);
  CHECK(lines == std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "{\"c\":3}"});
}

TEST_CASE("Engine errors map to kinds and keep the Engine's message", "[docker]") {
  auto e = dockerError("inspect x", 404, R"({"message":"No such container: x"})");
  CHECK(e.kind == dspy::ErrorKind::NotFound);
  CHECK_THAT(e.message, Catch::Contains("No such container: x"));
  CHECK(dockerError("create", 409, "{}").kind == dspy::ErrorKind::AlreadyExists);
  CHECK(dockerError("create", 400, "not json").kind == dspy::ErrorKind::InvalidArgument);
}

TEST_CASE("the create body binds ports to loopback and isolates task containers", "[docker]") {
  CreateRequest q;
  q.image = "img";
  q.ports = {{6379, "tcp", "127.0.0.1", 16379}};
  q.network = "net";
  q.aliases = {"redis"};
  q.drop_all_capabilities = true;
  q.no_new_privileges = true;
  const auto body = nlohmann::json::parse(createBody(q));
  CHECK(body["HostConfig"]["PortBindings"]["6379/tcp"][0]["HostIp"] == "127.0.0.1");
  CHECK(body["HostConfig"]["PortBindings"]["6379/tcp"][0]["HostPort"] == "16379");
  CHECK(body["NetworkingConfig"]["EndpointsConfig"]["net"]["Aliases"][0] == "redis");
  CHECK(body["HostConfig"]["CapDrop"][0] == "ALL");
  CHECK(body["HostConfig"]["SecurityOpt"][0] == "no-new-privileges");
  CHECK_FALSE(body["HostConfig"].contains("Privileged"));
}
