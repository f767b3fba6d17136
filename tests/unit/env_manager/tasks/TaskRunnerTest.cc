// ExecuteTask's runner against a fake Docker: the locked-down container, bad input
// refused before anything runs, exit codes, the timeout kill, per-class capacity.
#include <catch2/catch.hpp>

#include <future>

#include "common/Clock.h"
#include "env_manager/lifecycle/Lifecycle.h"
#include "env_manager/tasks/TaskRunner.h"
#include "tests/support/Process.h"
#include "tests/unit/env_manager/FakeDocker.h"

using namespace std::chrono_literals;
using dspy::test::FakeDocker;
using namespace dspy::envmanager;

namespace {

TasksConfig config() {
  TasksConfig c;
  c.classes["cpu"] = TaskClassConfig{.capacity = 1, .cpus = 0.5, .memory_bytes = 64 << 20, .timeout_seconds = 60};
  c.classes["net"] = TaskClassConfig{.capacity = 2, .timeout_seconds = 60, .network = true};
  c.commands["echo"] = TaskCommandConfig{.image = "busybox:local", .argv = {"echo"}, .allow_args = true};
  c.commands["fixed"] = TaskCommandConfig{.image = "busybox:local", .argv = {"true"}, .allow_args = false};
  c.output_tail_bytes = 16;
  return c;
}

// A clock whose waits last until they are stopped: a task never times out on it.
class PatientClock final : public dspy::Clock {
 public:
  SystemTime systemTime() const override { return std::chrono::system_clock::now(); }
  MonotonicTime monotonicTime() const override { return std::chrono::steady_clock::now(); }
  bool sleepFor(std::chrono::nanoseconds, std::stop_token stop) override {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    cv.wait(lock, stop, [] { return false; });
    return false;
  }
  bool waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable_any& cv, MonotonicTime, std::stop_token stop,
                 const std::function<bool()>& pred) override {
    return cv.wait(lock, stop, pred);
  }
};

}  // namespace

TEST_CASE("a task runs in a locked-down container that is removed afterwards", "[tasks]") {
  FakeDocker docker;
  docker.images.insert("busybox:local");
  docker.task_logs = {{"stdout", 0, "hello from the task, a long line"}, {"stderr", 0, "warn"}};
  PatientClock clock;
  TaskRunner runner(docker, config(), "proj", clock);
  auto out = runner.run("t1", "cpu", {{"command", "echo"}, {"args", R"(["hi"])"}, {"env.MODE", "fast"}}, 0);
  REQUIRE(out.ok());
  CHECK(out.value().success);
  CHECK(out.value().result.at("exit_code") == "0");
  CHECK(out.value().result.at("stdout_tail") == "sk, a long line\n");  // the last 16 bytes
  CHECK(out.value().result.at("stderr_tail") == "warn\n");
  REQUIRE(docker.creates.size() == 1);
  const auto& q = docker.creates[0];
  CHECK(q.name == "proj-task-t1");
  CHECK(q.command == std::vector<std::string>{"echo", "hi"});
  CHECK(q.env == std::vector<std::string>{"MODE=fast"});
  CHECK(q.drop_all_capabilities);
  CHECK(q.no_new_privileges);
  CHECK(q.network_disabled);
  CHECK(q.pids_limit == 256);
  CHECK(q.cpus == 0.5);
  CHECK(q.memory_bytes == 64 << 20);
  CHECK(q.labels.at("dev.dspy-agent.task-id") == "t1");
  CHECK(docker.containerCount() == 0);

  REQUIRE(runner.run("t2", "net", {{"command", "fixed"}}, 0).ok());
  CHECK_FALSE(docker.creates[1].network_disabled);
}

TEST_CASE("bad task requests are refused before any container exists", "[tasks]") {
  FakeDocker docker;
  docker.images.insert("busybox:local");
  PatientClock clock;
  TaskRunner runner(docker, config(), "proj", clock);
  auto kind = [&](const std::string& id, const std::string& cls, std::map<std::string, std::string> payload,
                  int timeout = 0) {
    auto r = runner.run(id, cls, payload, timeout);
    return r.ok() ? dspy::ErrorKind::Internal : r.kind();
  };
  using dspy::ErrorKind;
  CHECK(kind("bad id", "cpu", {{"command", "echo"}}) == ErrorKind::InvalidArgument);
  CHECK(kind("t", "gpu", {{"command", "echo"}}) == ErrorKind::InvalidArgument);
  CHECK(kind("t", "cpu", {}) == ErrorKind::InvalidArgument);
  CHECK(kind("t", "cpu", {{"command", "rm"}}) == ErrorKind::InvalidArgument);
  CHECK(kind("t", "cpu", {{"command", "fixed"}, {"args", R"(["x"])"}}) == ErrorKind::InvalidArgument);
  CHECK(kind("t", "cpu", {{"command", "echo"}, {"args", R"({"a":1})"}}) == ErrorKind::InvalidArgument);
  CHECK(kind("t", "cpu", {{"command", "echo"}, {"args", R"([1])"}}) == ErrorKind::InvalidArgument);
  CHECK(kind("t", "cpu", {{"command", "echo"}, {"env.1BAD", "x"}}) == ErrorKind::InvalidArgument);
  CHECK(kind("t", "cpu", {{"command", "echo"}}, -1) == ErrorKind::InvalidArgument);
  CHECK(docker.creates.empty());
  CHECK(runner.availability("cpu").value().in_use == 0);
}

TEST_CASE("a task that exits non-zero is a failed outcome carrying its exit code", "[tasks]") {
  FakeDocker docker;
  docker.images.insert("busybox:local");
  docker.task_exit_code = 3;
  PatientClock clock;
  TaskRunner runner(docker, config(), "proj", clock);
  auto out = runner.run("t1", "cpu", {{"command", "fixed"}}, 0);
  REQUIRE(out.ok());
  CHECK_FALSE(out.value().success);
  CHECK(out.value().result.at("exit_code") == "3");
  CHECK(out.value().error == "task exited with code 3");
}

TEST_CASE("a task over its timeout is killed; the timeout is capped by its class", "[tasks]") {
  FakeDocker docker;
  docker.images.insert("busybox:local");
  docker.task_runs_until_killed = true;
  dspy::FakeClock clock;  // its waits end at once: every deadline has passed
  TaskRunner runner(docker, config(), "proj", clock);
  auto out = runner.run("slow", "cpu", {{"command", "fixed"}}, 600);
  REQUIRE(out.ok());
  CHECK_FALSE(out.value().success);
  CHECK(out.value().result.at("timed_out") == "true");
  CHECK(out.value().result.at("exit_code") == "137");
  CHECK_THAT(out.value().error, Catch::Contains("timed out after 60s"));
  CHECK(clock.sleeps() == std::vector<std::chrono::nanoseconds>{60s});
  CHECK(docker.count("kill c1") == 1);
  CHECK(docker.containerCount() == 0);
}

TEST_CASE("a full class refuses more tasks until one ends", "[tasks]") {
  FakeDocker docker;
  docker.images.insert("busybox:local");
  docker.task_runs_until_killed = true;
  PatientClock clock;
  TaskRunner runner(docker, config(), "proj", clock);
  auto first = std::async(std::launch::async, [&] { return runner.run("a", "cpu", {{"command", "fixed"}}, 0); });
  REQUIRE(dspy::test::eventually([&] { return runner.availability("cpu").value().in_use == 1; }, 5s));
  auto second = runner.run("b", "cpu", {{"command", "fixed"}}, 0);
  CHECK(second.kind() == dspy::ErrorKind::FailedPrecondition);
  REQUIRE(docker.killContainer("c1", "KILL").ok());  // the first task ends
  REQUIRE(first.get().ok());
  CHECK(runner.availability("cpu").value().in_use == 0);
  docker.task_runs_until_killed = false;  // nothing runs now: the next task exits at once
  auto third = runner.run("c", "cpu", {{"command", "echo"}}, 0);
  REQUIRE(third.ok());
  CHECK(third.value().success);
}

TEST_CASE("task containers an earlier env-manager left are removed at start and never block a retry", "[tasks]") {
  FakeDocker docker;
  docker.images.insert("busybox:local");
  PatientClock clock;
  auto leftover = [&](const std::string& project, const std::string& task_id) {
    dspy::envmanager::docker::CreateRequest q;
    q.name = project + "-task-" + task_id;
    q.image = "busybox:local";
    q.labels = {{kLabelManaged, "true"}, {kLabelProject, project}, {"dev.dspy-agent.task-id", task_id}};
    return docker.createContainer(q).value();
  };
  SECTION("at start: this project's task containers go; services and other projects stay") {
    leftover("proj", "old1");
    leftover("proj", "old2");
    const std::string other = leftover("elsewhere", "old3");
    dspy::envmanager::docker::CreateRequest svc;
    svc.name = "proj-redis";
    svc.image = "busybox:local";
    svc.labels = {{kLabelManaged, "true"}, {kLabelProject, "proj"}, {kLabelService, "redis"}};
    const std::string service = docker.createContainer(svc).value();
    TaskRunner runner(docker, config(), "proj", clock);
    auto removed = runner.removeLeftovers();
    REQUIRE(removed.ok());
    CHECK(removed.value() == 2);
    CHECK(docker.inspectContainer(other).ok());
    CHECK(docker.inspectContainer(service).ok());
    CHECK(docker.listContainers({{kLabelProject, "proj"}, {"dev.dspy-agent.task-id", ""}}, true).value().empty());
    CHECK(runner.removeLeftovers().value() == 0);
  }
  SECTION("a retry of a task whose container was left under its name replaces that container") {
    const std::string old = leftover("proj", "t9");
    TaskRunner runner(docker, config(), "proj", clock);
    auto out = runner.run("t9", "cpu", {{"command", "fixed"}}, 0);
    REQUIRE(out.ok());
    CHECK(out.value().success);
    CHECK_FALSE(docker.inspectContainer(old).ok());
  }
  SECTION("the same task id twice at once in this process is refused, not replaced") {
    docker.task_runs_until_killed = true;
    TaskRunner runner(docker, config(), "proj", clock);
    auto first = std::async(std::launch::async, [&] { return runner.run("dup", "net", {{"command", "fixed"}}, 0); });
    REQUIRE(dspy::test::eventually([&] { return runner.availability("net").value().in_use == 1; }, 5s));
    auto second = runner.run("dup", "net", {{"command", "fixed"}}, 0);
    CHECK(second.kind() == dspy::ErrorKind::AlreadyExists);
    CHECK(runner.removeLeftovers().value() == 0);  // the running one is this process's own
    auto running = docker.listContainers({{"dev.dspy-agent.task-id", "dup"}}, true).value();
    REQUIRE(running.size() == 1);
    REQUIRE(docker.killContainer(running.front().id, "KILL").ok());
    REQUIRE(first.get().ok());
  }
}
