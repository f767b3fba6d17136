// The lifecycle engine against a fake Docker and a fake clock: closure, ordering,
// blocking, reverse stop, restart backoff, crash-loop limit, adoption.
#include <catch2/catch.hpp>

#include <mutex>
#include <set>
#include <string_view>

#include "common/Clock.h"
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
  std::unique_ptr<Lifecycle> lc;

  Rig() {
    for (const auto& s : stack.services) docker.images.insert(s.image);
  }
  Lifecycle& make(Lifecycle::Options o = {}) {
    lc = std::make_unique<Lifecycle>(stack, docker, prober, clock, o);
    return *lc;
  }
  std::map<std::string, std::string> statuses() {
    std::map<std::string, std::string> out;
    for (const auto& v : lc->status({})) out[v.name] = std::string(name(v.status));
    return out;
  }
};

bool before(const FakeDocker& d, const std::string& a, const std::string& b) {
  const auto ia = d.indexOf(a);
  const auto ib = d.indexOf(b);
  INFO(a << " at " << ia << ", " << b << " at " << ib);
  return ia != std::string::npos && ib != std::string::npos && ia < ib;
}

}  // namespace

TEST_CASE("starting one service starts exactly its dependency closure, dependencies first", "[lifecycle]") {
  Rig rig;
  auto& lc = rig.make();
  std::vector<LifecycleUpdate> updates;
  auto out = lc.start({"infermesh-router"}, [&](const LifecycleUpdate& u) { updates.push_back(u); });
  REQUIRE(out.ok());
  CHECK(out.value().success);
  CHECK(out.value().results.size() == 4);
  for (const auto& s : {"redis", "infermesh-node-a", "infermesh-node-b", "infermesh-router"}) {
    CHECK(out.value().results.at(s) == ServiceState::Healthy);
  }
  CHECK(rig.docker.indexOf("create kafka") == std::string::npos);
  CHECK(rig.docker.indexOf("create ollama") == std::string::npos);
  CHECK(before(rig.docker, "healthy redis", "start infermesh-node-a"));
  CHECK(before(rig.docker, "healthy redis", "start infermesh-node-b"));
  CHECK(before(rig.docker, "healthy infermesh-node-a", "start infermesh-router"));
  CHECK(before(rig.docker, "healthy infermesh-node-b", "start infermesh-router"));
  REQUIRE_FALSE(updates.empty());
  CHECK(updates.back().service.empty());
  CHECK(updates.back().status == "completed");
}

TEST_CASE("a service starts as soon as its own dependencies are ready, not when a level is done", "[lifecycle]") {
  Rig rig;
  // ollama (level 0, unrelated) only turns healthy once kafka (level 1) has started.
  rig.prober.wait_for_log_entry["ollama"] = "start kafka";
  auto& lc = rig.make();
  auto out = lc.start({}, nullptr);
  REQUIRE(out.ok());
  CHECK(out.value().success);
  CHECK(before(rig.docker, "healthy zookeeper", "start kafka"));
  CHECK(before(rig.docker, "start kafka", "healthy ollama"));
}

TEST_CASE("a pull of a chain's head does not hold back the start of other services", "[lifecycle]") {
  Rig rig;
  rig.docker.images.erase("redis:7-alpine");
  rig.docker.pullable.insert("redis:7-alpine");
  rig.docker.pull_waits_for["redis:7-alpine"] = "start ollama";
  Lifecycle::Options o;
  o.max_concurrent = 16;
  auto& lc = rig.make(o);
  auto out = lc.start({"redis", "ollama"}, nullptr);
  REQUIRE(out.ok());
  CHECK(out.value().success);
  CHECK(before(rig.docker, "start ollama", "create redis"));
}

TEST_CASE("a failed required dependency blocks its dependents while independent services go on", "[lifecycle]") {
  Rig rig;
  rig.docker.images.erase("redis:7-alpine");  // not local and cannot be pulled
  auto& lc = rig.make();
  std::vector<LifecycleUpdate> updates;
  auto out = lc.start({}, [&](const LifecycleUpdate& u) { updates.push_back(u); });
  REQUIRE(out.ok());
  const auto& r = out.value().results;
  CHECK_FALSE(out.value().success);
  CHECK(r.at("redis") == ServiceState::Failed);
  CHECK(r.at("infermesh-node-a") == ServiceState::Blocked);
  CHECK(r.at("infermesh-node-b") == ServiceState::Blocked);
  CHECK(r.at("infermesh-router") == ServiceState::Blocked);
  for (const auto& s : {"redb", "ollama", "zookeeper", "kafka", "prometheus"}) CHECK(r.at(s) == ServiceState::Healthy);
  CHECK(rig.docker.count("create infermesh-node-a") == 0);
  bool saw_reason = false;
  for (const auto& u : updates) {
    if (u.service == "infermesh-router" && u.status == "blocked") {
      saw_reason = u.message.find("dependency infermesh-node-") != std::string::npos;
    }
  }
  CHECK(saw_reason);
  auto views = lc.status({"infermesh-node-a"});
  REQUIRE(views.size() == 1);
  CHECK_THAT(views[0].message, Catch::Contains("dependency redis is failed") && Catch::Contains("pull"));
}

TEST_CASE("an image that is missing locally is pulled with progress", "[lifecycle]") {
  Rig rig;
  rig.docker.images.erase("redis:7-alpine");
  rig.docker.pullable.insert("redis:7-alpine");
  auto& lc = rig.make();
  std::vector<int> pull_progress;
  auto out = lc.start({"redis"}, [&](const LifecycleUpdate& u) {
    if (u.status == "pulling") pull_progress.push_back(u.progress);
  });
  REQUIRE(out.ok());
  CHECK(out.value().success);
  CHECK(rig.docker.count("pull redis:7-alpine") == 1);
  REQUIRE_FALSE(pull_progress.empty());
  CHECK(pull_progress.back() == 100);
}

TEST_CASE("a service that never turns healthy fails after the health timeout", "[lifecycle]") {
  Rig rig;
  rig.prober.probes_needed["redis"] = -1;
  auto& lc = rig.make({.health_timeout = 10s});
  auto out = lc.start({"redis"}, nullptr);
  REQUIRE(out.ok());
  CHECK(out.value().results.at("redis") == ServiceState::Failed);
  auto v = lc.status({"redis"});
  CHECK_THAT(v[0].message, Catch::StartsWith("not healthy within 10.0s"));
  // Probes began fast and backed off towards the interval.
  auto sleeps = rig.clock.sleeps();
  REQUIRE(sleeps.size() >= 3);
  CHECK(sleeps[0] == 25ms);
  CHECK(sleeps[1] > sleeps[0]);
}

TEST_CASE("a container that exits while starting fails with its exit code", "[lifecycle]") {
  Rig rig;
  rig.docker.exit_on_start["redb"] = 3;
  auto& lc = rig.make();
  auto out = lc.start({"redb"}, nullptr);
  REQUIRE(out.ok());
  CHECK(out.value().results.at("redb") == ServiceState::Failed);
  CHECK_THAT(lc.status({"redb"})[0].message, Catch::Contains("exited with code 3"));
}

TEST_CASE("stop runs in reverse dependency order and takes dependents down first", "[lifecycle]") {
  Rig rig;
  auto& lc = rig.make();
  REQUIRE(lc.start({}, nullptr).value().success);
  auto stopped = lc.stop({"redis"}, 0);
  REQUIRE(stopped.ok());
  CHECK(stopped.value().size() == 4);
  CHECK(stopped.value().at("redis") == "stopped");
  CHECK(before(rig.docker, "stop infermesh-router", "stop infermesh-node-a"));
  CHECK(before(rig.docker, "stop infermesh-router", "stop infermesh-node-b"));
  CHECK(before(rig.docker, "stop infermesh-node-a", "stop redis"));
  CHECK(before(rig.docker, "stop infermesh-node-b", "stop redis"));
  CHECK(rig.docker.indexOf("stop kafka") == std::string::npos);
  CHECK(rig.statuses().at("kafka") == "healthy");

  auto all = lc.stop({}, 0);
  REQUIRE(all.ok());
  CHECK(before(rig.docker, "stop kafka", "stop zookeeper"));
  CHECK(all.value().at("redis") == "not running");  // its container was stopped above
}

TEST_CASE("unknown service names are rejected and change nothing", "[lifecycle]") {
  Rig rig;
  auto& lc = rig.make();
  auto out = lc.start({"redis", "nope"}, nullptr);
  REQUIRE_FALSE(out.ok());
  CHECK(out.kind() == dspy::ErrorKind::InvalidArgument);
  CHECK_THAT(out.error(), Catch::Contains("nope"));
  CHECK(rig.docker.log().empty());
  CHECK_FALSE(lc.stop({"nope"}, 0).ok());
  CHECK(lc.restart("nope", 0).kind() == dspy::ErrorKind::NotFound);
}

TEST_CASE("a dead container is restarted with growing backoff until the crash-loop limit", "[lifecycle]") {
  Rig rig;
  auto stack = rig.stack;
  auto& lc = rig.make();
  REQUIRE(lc.start({"redb"}, nullptr).value().success);
  const auto* spec = rig.stack.find("redb");
  const int limit = spec->restart.max_restarts;  // 5 by default
  for (int i = 0; i < limit; ++i) {
    lc.onDockerEvent(rig.docker.kill("redb", 1));
    lc.waitForRestarts();
    INFO("restart " << i + 1);
    REQUIRE(rig.statuses().at("redb") == "healthy");
  }
  CHECK(rig.docker.count("start redb") == static_cast<std::size_t>(limit + 1));
  // Backoff delays: about 1, 2, 4, 8, 16 s (with up to 20% jitter below each).
  std::vector<std::chrono::nanoseconds> restarts;
  for (auto d : rig.clock.sleeps()) {
    if (d >= 500ms) restarts.push_back(d);
  }
  REQUIRE(restarts.size() == static_cast<std::size_t>(limit));
  for (std::size_t i = 1; i < restarts.size(); ++i) CHECK(restarts[i] > restarts[i - 1]);
  CHECK(restarts[0] <= 1000ms);
  CHECK(restarts[0] >= 800ms);

  lc.onDockerEvent(rig.docker.kill("redb", 1));
  lc.waitForRestarts();
  auto v = lc.status({"redb"})[0];
  CHECK(v.status == ServiceState::CrashLoop);
  CHECK_THAT(v.message, Catch::Contains("gave up after 5 restarts"));
  CHECK(rig.docker.count("start redb") == static_cast<std::size_t>(limit + 1));
}

TEST_CASE("a service that ran past reset_after gets its backoff reset", "[lifecycle]") {
  Rig rig;
  auto& lc = rig.make();
  REQUIRE(lc.start({"redb"}, nullptr).value().success);
  lc.onDockerEvent(rig.docker.kill("redb", 1));
  lc.waitForRestarts();
  rig.clock.advance(120s);  // longer than reset_after (60 s)
  lc.onDockerEvent(rig.docker.kill("redb", 1));
  lc.waitForRestarts();
  std::vector<std::chrono::nanoseconds> restarts;
  for (auto d : rig.clock.sleeps()) {
    if (d >= 500ms && d <= 30s) restarts.push_back(d);
  }
  REQUIRE(restarts.size() == 2);
  CHECK(restarts[1] <= 1000ms);  // back at the initial delay, not doubled
}

TEST_CASE("an exit after an explicit stop is not restarted", "[lifecycle]") {
  Rig rig;
  auto& lc = rig.make();
  REQUIRE(lc.start({"redb"}, nullptr).value().success);
  REQUIRE(lc.stop({"redb"}, 0).ok());
  lc.onDockerEvent({"container", "die", lc.containerOf("redb"),
                    {{kLabelService, "redb"}, {"exitCode", "0"}}, 0});
  lc.waitForRestarts();
  CHECK(rig.docker.count("start redb") == 1);
  CHECK(rig.statuses().at("redb") == "stopped");
}

TEST_CASE("an unhealthy service is restarted when its policy says so", "[lifecycle]") {
  Rig rig;
  const int retries = rig.stack.find("redb")->healthcheck.retries;
  rig.prober.failures_after_healthy["redb"] = retries;
  auto& lc = rig.make();
  REQUIRE(lc.start({"redb"}, nullptr).value().success);
  for (int i = 0; i < retries; ++i) {
    rig.clock.advance(10s);
    REQUIRE(lc.probeDue() == 1);
  }
  lc.waitForRestarts();
  CHECK(rig.docker.count("stop redb") == 1);
  CHECK(rig.docker.count("start redb") == 2);
  CHECK(lc.status({"redb"})[0].status == ServiceState::Healthy);
  CHECK(lc.status({"redb"})[0].restarts == 1);
}

TEST_CASE("existing containers are adopted by label; duplicates removed; changed definitions recreated", "[lifecycle]") {
  Rig rig;
  const auto* redis = rig.stack.find("redis");
  const auto* redb = rig.stack.find("redb");
  auto labels = [&](const ServiceSpec* s, const std::string& hash) {
    return dspy::envmanager::docker::Labels{{kLabelManaged, "true"}, {kLabelProject, rig.stack.project},
                                            {kLabelService, s->name}, {kLabelHash, hash}};
  };
  const std::string keep = rig.docker.plant(labels(redis, redis->definitionHash(rig.stack.network)), true);
  rig.docker.plant(labels(redis, redis->definitionHash(rig.stack.network)), false);  // a duplicate
  rig.docker.plant(labels(redb, "0000000000000000"), true);                          // an older definition
  rig.docker.plant({{kLabelProject, "someone-else"}, {kLabelService, "redis"}, {kLabelHash, "x"}}, true);
  auto& lc = rig.make();
  lc.run();
  lc.shutdown();
  CHECK(lc.containerOf("redis") == keep);
  CHECK(rig.docker.count("remove redis") == 1);
  CHECK(rig.docker.containerCount() == 3);  // the other project's container is untouched

  REQUIRE(lc.start({"redis", "redb"}, nullptr).value().success);
  CHECK(rig.docker.count("create redis") == 0);  // adopted, not duplicated
  CHECK(lc.containerOf("redis") == keep);
  CHECK(rig.docker.count("remove redb") == 1);   // recreated for the new definition
  CHECK(rig.docker.count("create redb") == 1);
}

TEST_CASE("starting what already runs creates nothing new", "[lifecycle]") {
  Rig rig;
  auto& lc = rig.make();
  REQUIRE(lc.start({}, nullptr).value().success);
  const auto creates = rig.docker.count("create redis");
  REQUIRE(lc.start({}, nullptr).value().success);
  CHECK(rig.docker.count("create redis") == creates);
  CHECK(rig.docker.count("start redis") == 1);
}

TEST_CASE("service states map to the old clients' five status words", "[lifecycle]") {
  const std::set<std::string_view> vocabulary{"running", "starting", "unhealthy", "stopped", "failed"};
  for (auto s : {ServiceState::Stopped, ServiceState::Pending, ServiceState::Starting, ServiceState::Waiting,
                 ServiceState::Healthy, ServiceState::Running, ServiceState::Unhealthy, ServiceState::Restarting,
                 ServiceState::Stopping, ServiceState::Exited, ServiceState::Completed, ServiceState::Failed,
                 ServiceState::Blocked, ServiceState::CrashLoop}) {
    INFO(name(s));
    CHECK(vocabulary.count(wireStatus(s)) == 1);
    CHECK(parseServiceState(name(s)) == s);
    // "running" on the wire means up: an old client counts exactly those services.
    CHECK((wireStatus(s) == "running") == isUp(s));
  }
  CHECK(wireStatus(ServiceState::Healthy) == "running");
  CHECK(wireStatus(ServiceState::Waiting) == "starting");
  CHECK(wireStatus(ServiceState::CrashLoop) == "failed");
  CHECK(wireStatus(ServiceState::Blocked) == "failed");
  CHECK_FALSE(parseServiceState("up").has_value());
}

TEST_CASE("a start records its timeline; a start that finds the service up leaves it", "[lifecycle][timeline]") {
  Rig rig;
  auto& lc = rig.make();
  REQUIRE(lc.start({"redb"}, nullptr).value().success);
  auto tl = lc.status({"redb"})[0].timeline;
  CHECK(tl.requested_ms > 0);
  CHECK(tl.created_ms >= tl.requested_ms);
  CHECK(tl.started_ms >= tl.created_ms);
  CHECK(tl.first_probe_ms >= tl.started_ms);
  CHECK(tl.ready_ms >= tl.first_probe_ms);
  CHECK(tl.ready_ms > 0);
  CHECK(tl.outcome == "healthy");

  rig.clock.advance(5s);
  REQUIRE(lc.start({"redb"}, nullptr).value().success);  // already up: nothing started
  auto again = lc.status({"redb"})[0].timeline;
  CHECK(again.requested_ms == tl.requested_ms);
  CHECK(again.ready_ms == tl.ready_ms);

  // A restart by policy is the service's last start: a new timeline, no create (the
  // same container is started again).
  lc.onDockerEvent(rig.docker.kill("redb", 1));
  lc.waitForRestarts();
  auto restarted = lc.status({"redb"})[0].timeline;
  CHECK(restarted.requested_ms >= tl.requested_ms + 5000);
  CHECK(restarted.started_ms >= restarted.requested_ms);
  CHECK(restarted.outcome == "healthy");
}

TEST_CASE("a container's exit reaches health subscribers at once and is not counted as a failed probe",
          "[lifecycle][timeline]") {
  Rig rig;
  auto& lc = rig.make();
  REQUIRE(lc.start({"redb"}, nullptr).value().success);
  std::mutex mu;
  std::vector<ProbeReport> seen;
  auto sub = lc.health().subscribe([&](const ProbeReport& r) {
    std::lock_guard lock(mu);
    seen.push_back(r);
  });
  const std::string old_id = lc.containerOf("redb");
  lc.onDockerEvent(rig.docker.kill("redb", 137));
  {
    std::lock_guard lock(mu);
    REQUIRE_FALSE(seen.empty());
    CHECK(seen.front().service == "redb");
    CHECK(seen.front().container_id == old_id);
    CHECK_FALSE(seen.front().healthy);
    CHECK_FALSE(seen.front().running);
    CHECK_THAT(seen.front().message, Catch::Contains("137"));
  }
  lc.waitForRestarts();
  CHECK(rig.statuses().at("redb") == "healthy");
  CHECK(lc.status({"redb"})[0].restarts == 1);
}
