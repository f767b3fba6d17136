// The health monitor: the one place that schedules probes and publishes verdicts.
#include <catch2/catch.hpp>

#include <vector>

#include "common/Clock.h"
#include "env_manager/lifecycle/HealthMonitor.h"
#include "env_manager/lifecycle/Lifecycle.h"
#include "tests/unit/env_manager/FakeDocker.h"

using namespace std::chrono_literals;
using dspy::test::FakeDocker;
using dspy::test::FakeProber;
using namespace dspy::envmanager;

namespace {

struct Rig {
  ServicesFile stack = dspy::test::defaultStack();
  FakeDocker docker;
  FakeProber prober{docker};
  dspy::FakeClock clock;
  std::string running(const std::string& service) {
    return docker.plant({{kLabelService, service}, {kLabelProject, stack.project}}, true);
  }
};

}  // namespace

TEST_CASE("watched containers are probed at their service's interval and every listener hears it",
          "[lifecycle][health]") {
  Rig rig;
  HealthMonitor monitor(rig.stack, rig.docker, rig.prober, rig.clock, 250ms);
  std::vector<ProbeReport> heard;
  auto subscription = monitor.subscribe([&](const ProbeReport& r) { heard.push_back(r); });
  const std::string id = rig.running("redis");
  const auto interval = rig.stack.find("redis")->healthcheck.interval;

  CHECK(monitor.probeDue() == 0);  // nothing watched
  monitor.watch("redis", id, rig.clock.monotonicTime() + interval);
  CHECK(monitor.probeDue() == 0);  // not due yet
  rig.clock.advance(interval);
  CHECK(monitor.probeDue() == 1);
  CHECK(monitor.probeDue() == 0);  // the next one is an interval away
  rig.clock.advance(interval);
  CHECK(monitor.probeDue() == 1);
  REQUIRE(heard.size() == 2);
  CHECK(heard[0].service == "redis");
  CHECK(heard[0].container_id == id);
  CHECK(heard[0].running);
  REQUIRE(monitor.latest("redis").has_value());
  CHECK(monitor.latest("redis")->container_id == id);
  CHECK_FALSE(monitor.latest("redb").has_value());

  monitor.unwatch("redis");
  rig.clock.advance(interval * 3);
  CHECK(monitor.probeDue() == 0);
  CHECK(heard.size() == 2);
}

TEST_CASE("a probe on request is published too; a listener that left hears nothing", "[lifecycle][health]") {
  Rig rig;
  HealthMonitor monitor(rig.stack, rig.docker, rig.prober, rig.clock, 250ms);
  int heard = 0;
  {
    auto subscription = monitor.subscribe([&](const ProbeReport&) { ++heard; });
    auto info = rig.docker.inspectContainer(rig.running("redb"));
    REQUIRE(info.ok());
    monitor.probeNow("redb", info.value());
    CHECK(heard == 1);
  }
  auto info = rig.docker.inspectContainer(rig.running("redb"));
  REQUIRE(info.ok());
  monitor.probeNow("redb", info.value());
  CHECK(heard == 1);
  CHECK(monitor.latest("redb")->container_id == info.value().id);
}

TEST_CASE("a container that is not running is reported as such, without a probe", "[lifecycle][health]") {
  Rig rig;
  HealthMonitor monitor(rig.stack, rig.docker, rig.prober, rig.clock, 250ms);
  const std::string id = rig.docker.plant({{kLabelService, "redis"}, {kLabelProject, rig.stack.project}}, false);
  auto info = rig.docker.inspectContainer(id);
  REQUIRE(info.ok());
  const auto report = monitor.probeNow("redis", info.value());
  CHECK_FALSE(report.running);
  CHECK_FALSE(report.healthy);
  CHECK(report.message.find("not running") != std::string::npos);
}

TEST_CASE("a start is probed fast, backing off by half each time, until healthy, exited or too late",
          "[lifecycle][health]") {
  Rig rig;
  HealthMonitor monitor(rig.stack, rig.docker, rig.prober, rig.clock, 250ms);
  int heard = 0;
  auto subscription = monitor.subscribe([&](const ProbeReport&) { ++heard; });
  using Kind = HealthMonitor::StartVerdict::Kind;

  rig.prober.probes_needed["redis"] = 4;
  const auto start = rig.clock.monotonicTime();
  std::vector<int> attempts;
  auto healthy = monitor.awaitHealthy("redis", rig.running("redis"), 25ms, start + 10s, {},
                                      [&](int attempt, const ProbeReport&) { attempts.push_back(attempt); });
  CHECK(healthy.kind == Kind::Healthy);
  CHECK(healthy.attempts == 4);
  CHECK(attempts == std::vector<int>{1, 2, 3, 4});
  CHECK(heard == 4);  // every start probe was published
  CHECK(rig.clock.sleeps() == std::vector<std::chrono::nanoseconds>{25ms, 37ms, 55ms});

  // Probes from outside keep a 100 ms pace at most (kafka has a tcp check).
  rig.prober.probes_needed["kafka"] = 12;
  const auto before = rig.clock.sleeps().size();
  REQUIRE(monitor.awaitHealthy("kafka", rig.running("kafka"), 25ms, rig.clock.monotonicTime() + 10s, {}, nullptr).kind ==
          Kind::Healthy);
  const auto sleeps = rig.clock.sleeps();
  REQUIRE(sleeps.size() == before + 11);
  CHECK(sleeps[before + 3] == 82ms);  // still growing by half
  for (std::size_t i = before + 4; i < sleeps.size(); ++i) CHECK(sleeps[i] == kCheapProbePace);

  rig.prober.probes_needed["redb"] = -1;  // never healthy
  const auto late = monitor.awaitHealthy("redb", rig.running("redb"), 25ms, rig.clock.monotonicTime() + 1s, {}, nullptr);
  CHECK(late.kind == Kind::TimedOut);
  CHECK(late.attempts > 3);
  CHECK_FALSE(late.last.healthy);

  const std::string gone = rig.docker.plant({{kLabelService, "redis"}, {kLabelProject, rig.stack.project}}, false);
  CHECK(monitor.awaitHealthy("redis", gone, 25ms, rig.clock.monotonicTime() + 1s, {}, nullptr).kind == Kind::Exited);
  CHECK(monitor.awaitHealthy("redis", "no-such-container", 25ms, rig.clock.monotonicTime() + 1s, {}, nullptr).kind ==
        Kind::InspectFailed);
  std::stop_source stop;
  stop.request_stop();
  CHECK(monitor.awaitHealthy("redb", rig.running("redb"), 25ms, rig.clock.monotonicTime() + 1s, stop.get_token(),
                             nullptr)
            .kind == Kind::Cancelled);
}
