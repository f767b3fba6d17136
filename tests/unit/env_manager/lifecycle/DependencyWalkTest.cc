// The one dependency walk that start and stop share: order, the shared cap, early
// release, and giving up on order when stopped.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <stop_token>
#include <vector>

#include "env_manager/lifecycle/DependencyWalk.h"
#include "tests/support/Process.h"
#include "tests/unit/env_manager/FakeDocker.h"

using namespace std::chrono_literals;
using namespace dspy::envmanager;

namespace {

std::set<std::string> all(const ServicesFile& f) {
  const auto names = f.names();
  return {names.begin(), names.end()};
}

// Records when each step begins and ends, as positions in one sequence.
struct Trace {
  std::mutex mu;
  std::vector<std::string> events;
  void add(const std::string& e) {
    std::lock_guard lock(mu);
    events.push_back(e);
  }
  std::size_t at(const std::string& e) {
    std::lock_guard lock(mu);
    return static_cast<std::size_t>(std::find(events.begin(), events.end(), e) - events.begin());
  }
};

}  // namespace

TEST_CASE("a forward walk begins a service only after its dependencies ended", "[lifecycle][walk]") {
  const auto stack = dspy::test::defaultStack();
  ServiceGraph graph(stack);
  DependencyWalk walk(graph, 4);
  Trace trace;
  walk.run(all(stack), DependencyWalk::Order::DependenciesFirst, [&](const std::string& name, DependencyWalk::Step&) {
    trace.add("begin " + name);
    trace.add("end " + name);
  });
  REQUIRE(trace.events.size() == 18);
  for (const auto& s : stack.services) {
    for (const auto& dep : graph.dependencies(s.name)) {
      INFO(s.name << " depends on " << dep);
      CHECK(trace.at("end " + dep) < trace.at("begin " + s.name));
    }
  }
}

TEST_CASE("a reverse walk begins a service only after its dependents ended", "[lifecycle][walk]") {
  const auto stack = dspy::test::defaultStack();
  ServiceGraph graph(stack);
  DependencyWalk walk(graph, 4);
  Trace trace;
  auto closure = graph.stopClosure({"redis"});
  REQUIRE(closure.ok());
  walk.run(closure.value(), DependencyWalk::Order::DependentsFirst,
           [&](const std::string& name, DependencyWalk::Step&) {
             trace.add("begin " + name);
             trace.add("end " + name);
           });
  CHECK(trace.events.size() == 2 * closure.value().size());
  for (const auto& name : closure.value()) {
    for (const auto& d : graph.dependents(name)) {
      INFO(d << " depends on " << name);
      CHECK(trace.at("end " + d) < trace.at("begin " + name));
    }
  }
}

TEST_CASE("container operations of a walk share one cap, and use all of it", "[lifecycle][walk]") {
  const auto stack = dspy::test::defaultStack();
  ServiceGraph graph(stack);
  const int cap = 2;
  DependencyWalk walk(graph, cap);
  std::mutex mu;
  std::condition_variable cv;
  int inside = 0, most = 0, entered = 0;
  // Services with no dependencies among each other run at once; each holds its slot
  // until a second one is inside too (or a deadline passes), so the walk must run two
  // at once, and never three.
  std::set<std::string> independent;
  for (const auto& s : stack.services) {
    if (graph.dependencies(s.name).empty()) independent.insert(s.name);
  }
  REQUIRE(independent.size() >= 3);
  std::atomic<int> refused{0};  // Catch2 assertions are for the test's own thread: count here, check after
  walk.run(independent, DependencyWalk::Order::DependenciesFirst, [&](const std::string&, DependencyWalk::Step&) {
    refused += walk.withSlot([&] {
      std::unique_lock lock(mu);
      ++inside;
      ++entered;
      most = std::max(most, inside);
      cv.notify_all();
      cv.wait_for(lock, 5s, [&] { return inside >= cap || entered == static_cast<int>(independent.size()); });
      --inside;
    }) ? 0 : 1;
  });
  CHECK(refused == 0);
  CHECK(most == cap);
  CHECK(entered == static_cast<int>(independent.size()));
}

TEST_CASE("a step that releases early lets its dependents go while it goes on", "[lifecycle][walk]") {
  const auto stack = dspy::test::defaultStack();
  ServiceGraph graph(stack);
  DependencyWalk walk(graph, 4);
  std::mutex mu;
  std::condition_variable cv;
  bool dependent_began = false;
  bool waited = false;
  auto closure = graph.startClosure({"infermesh-node-a"});  // redis, then node-a
  REQUIRE(closure.ok());
  REQUIRE(closure.value().size() == 2);
  walk.run(closure.value(), DependencyWalk::Order::DependenciesFirst,
           [&](const std::string& name, DependencyWalk::Step& step) {
             std::unique_lock lock(mu);
             if (name == "redis") {
               lock.unlock();
               step.release();
               lock.lock();
               waited = cv.wait_for(lock, 5s, [&] { return dependent_began; });
             } else {
               dependent_began = true;
               cv.notify_all();
             }
           });
  CHECK(waited);
}

TEST_CASE("a stopped walk no longer holds services back, and a stopped slot wait gives up", "[lifecycle][walk]") {
  const auto stack = dspy::test::defaultStack();
  ServiceGraph graph(stack);
  DependencyWalk walk(graph, 1);
  std::stop_source stop;
  std::atomic<int> steps{0};
  auto closure = graph.startClosure({"infermesh-node-a"});
  REQUIRE(closure.ok());
  // redis's step never releases before node-a has run: only a stop lets node-a go.
  std::mutex mu;
  std::condition_variable_any cv;
  bool node_ran = false;
  walk.run(
      closure.value(), DependencyWalk::Order::DependenciesFirst,
      [&](const std::string& name, DependencyWalk::Step&) {
        ++steps;
        std::unique_lock lock(mu);
        if (name == "redis") {
          stop.request_stop();
          cv.wait_for(lock, 5s, [&] { return node_ran; });
        } else {
          node_ran = true;
          cv.notify_all();
        }
      },
      stop.get_token());
  CHECK(node_ran);
  CHECK(steps == 2);
  // The one slot is held: a wait for another with a stopped token gives up.
  bool ran = false;
  REQUIRE(walk.withSlot([&] { CHECK_FALSE(walk.withSlot([&] { ran = true; }, stop.get_token())); }));
  CHECK_FALSE(ran);
}

TEST_CASE("a service's start rank is the longest chain of services that wait for it", "[lifecycle][walk]") {
  const auto stack = dspy::test::defaultStack();
  ServiceGraph graph(stack);
  DependencyWalk walk(graph, 4);
  CHECK(walk.rank("redis") == 2);  // infermesh-node-a, then infermesh-router
  CHECK(walk.rank("infermesh-node-a") == 1);
  CHECK(walk.rank("zookeeper") == 1);  // kafka
  CHECK(walk.rank("infermesh-router") == 0);
  CHECK(walk.rank("ollama") == 0);
  CHECK(walk.rank("not-a-service") == 0);
}

TEST_CASE("start turns go to the longest chain first; a lower rank already in does not hold a higher back",
          "[lifecycle][walk]") {
  const auto stack = dspy::test::defaultStack();
  ServiceGraph graph(stack);
  DependencyWalk walk(graph, 8);
  auto held = [&](int n) { return dspy::test::eventually([&] { return walk.turnsHeldBack() == n; }, 5s); };

  auto leaf = walk.startTurn("ollama");  // rank 0, in
  REQUIRE(leaf);
  // redis (rank 2) is not held back by it.
  auto redis = std::async(std::launch::async, [&] { return walk.startTurn("redis"); });
  REQUIRE(redis.wait_for(5s) == std::future_status::ready);
  auto redis_turn = redis.get();
  REQUIRE(redis_turn);
  // While redis is in, zookeeper (rank 1) and prometheus (rank 0) wait.
  auto zk = std::async(std::launch::async, [&] { return walk.startTurn("zookeeper"); });
  auto prom = std::async(std::launch::async, [&] { return walk.startTurn("prometheus"); });
  REQUIRE(held(2));
  CHECK(zk.wait_for(0s) == std::future_status::timeout);
  CHECK(prom.wait_for(0s) == std::future_status::timeout);
  // redis done: zookeeper goes, prometheus still waits behind it.
  redis_turn.reset();
  REQUIRE(zk.wait_for(5s) == std::future_status::ready);
  auto zk_turn = zk.get();
  REQUIRE(zk_turn);
  REQUIRE(held(1));
  CHECK(prom.wait_for(0s) == std::future_status::timeout);
  // Another rank-0 service already in (ollama) does not matter; zookeeper done: it goes.
  zk_turn.reset();
  REQUIRE(prom.wait_for(5s) == std::future_status::ready);
  CHECK(prom.get().has_value());
  CHECK(walk.turnsHeldBack() == 0);
}

TEST_CASE("a wait for a start turn gives up when stopped and lets lower ranks go", "[lifecycle][walk]") {
  const auto stack = dspy::test::defaultStack();
  ServiceGraph graph(stack);
  DependencyWalk walk(graph, 8);
  auto redis = walk.startTurn("redis");
  REQUIRE(redis);
  std::stop_source stop_zk;
  auto zk = std::async(std::launch::async, [&] { return walk.startTurn("zookeeper", stop_zk.get_token()); });
  auto prom = std::async(std::launch::async, [&] { return walk.startTurn("prometheus"); });
  REQUIRE(dspy::test::eventually([&] { return walk.turnsHeldBack() == 2; }, 5s));
  stop_zk.request_stop();
  REQUIRE(zk.wait_for(5s) == std::future_status::ready);
  CHECK_FALSE(zk.get().has_value());
  redis.reset();  // with zookeeper gone, nothing is ahead of prometheus
  REQUIRE(prom.wait_for(5s) == std::future_status::ready);
  CHECK(prom.get().has_value());
}
