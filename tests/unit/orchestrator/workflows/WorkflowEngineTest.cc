// The workflow engine on the real task engine, an in-memory store and a scripted
// executor: parallel branches, output references, retries, both failure policies,
// cancel, idempotent starts, recovery after a stop, the node types without a task.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <future>
#include <mutex>

#include "orchestrator/scheduler/TaskEngine.h"
#include "orchestrator/store/MemoryTaskStore.h"
#include "orchestrator/workflows/WorkflowEngine.h"
#include "tests/support/Process.h"

using namespace dspy::orchestrator;
using namespace std::chrono_literals;
using dspy::test::eventually;

namespace {

// payload "outcome": ok (default), fail, fail_once, block (until released or cancelled);
// the result echoes payload "value" as "out".
class ScriptExecutor final : public Executor {
 public:
  std::string kind() const override { return "script"; }
  dspy::Status validate(const dspy::Payload&) const override { return dspy::Status::Ok(); }
  ExecOutcome execute(const ExecRequest& req, std::stop_token cancel) override {
    const std::string outcome = req.payload.count("outcome") ? req.payload.at("outcome") : "ok";
    {
      std::unique_lock lock(mu_);
      ++starts_[req.task_id];
      ++running_;
      most_ = std::max(most_, running_);
      cv_.notify_all();
      if (outcome == "block" || outcome == "pair") {
        // "pair": wait until two tasks run at once (proves parallel branches), at most 5 s.
        cv_.wait_for(lock, cancel, 5s, [&] { return released_ || (outcome == "pair" && running_ >= 2); });
      }
      --running_;
    }
    if (cancel.stop_requested()) return ExecOutcome::failure("cancelled", false);
    if (outcome == "fail" || (outcome == "fail_once" && req.attempt == 1)) return ExecOutcome::failure("scripted", true);
    ExecOutcome o;
    o.success = true;
    o.result["out"] = req.payload.count("value") ? req.payload.at("value") : req.task_id;
    return o;
  }
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  int starts(const std::string& id) {
    std::lock_guard lock(mu_);
    return starts_[id];
  }
  int running() {
    std::lock_guard lock(mu_);
    return running_;
  }
  int most() {
    std::lock_guard lock(mu_);
    return most_;
  }

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::map<std::string, int> starts_;
  int running_ = 0, most_ = 0;
  bool released_ = false;
};

// How many events of `type` the store's outbox holds.
int eventCount(MemoryTaskStore& store, const std::string& type) {
  auto events = store.readEvents(0, 1'000'000, false);
  REQUIRE(events.ok());
  return static_cast<int>(std::count_if(events.value().begin(), events.value().end(),
                                        [&](const Event& e) { return e.type == type; }));
}

struct Rig {
  MemoryTaskStore store;
  std::shared_ptr<ScriptExecutor> exec = std::make_shared<ScriptExecutor>();
  std::unique_ptr<TaskEngine> tasks;
  std::unique_ptr<WorkflowEngine> flows;

  Rig() { boot(); }
  ~Rig() {
    exec->release();
    halt();
  }
  void boot() {
    EngineConfig cfg;
    ClassConfig c;
    c.executor = "script";
    c.limiter = LimiterConfig{.kind = "fixed", .initial = 8, .min = 1, .max = 8};
    c.retry = RetryPolicy{.max_attempts = 1};
    cfg.classes["cpu_short"] = c;
    cfg.classes["cpu_long"] = c;
    tasks = std::make_unique<TaskEngine>(cfg, store, TaskEngine::Executors{{"cpu_short", exec}, {"cpu_long", exec}},
                                         dspy::Clock::real());
    flows = std::make_unique<WorkflowEngine>(WorkflowConfig{}, store, *tasks, dspy::Clock::real(),
                                             [](const std::vector<std::string>& names, std::stop_token) -> dspy::Status {
                                               if (names.front() == "down") return dspy::Error{"redis is down"};
                                               return dspy::Status::Ok();
                                             });
    tasks->setListener([this](const TaskRecord& t) { flows->onTask(t); });
    REQUIRE(tasks->recover().ok());
    tasks->start();
    REQUIRE(flows->recover().ok());
  }
  void halt() {
    if (flows) flows->stop();
    if (tasks) tasks->stop();
    flows.reset();
    tasks.reset();
  }
  std::string create(const std::string& spec) {
    auto w = flows->putWorkflow(spec, "", WorkflowEngine::PutMode::Create);
    REQUIRE(w.ok());
    return w.value().id;
  }
  RunRecord start(const std::string& wf, const std::string& key = "", dspy::Payload input = {}) {
    std::promise<dspy::Result<RunRecord>> p;
    flows->startRun(wf, key, input, [&](dspy::Result<RunRecord> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    REQUIRE(r.ok());
    return r.value();
  }
  RunRecord waitEnd(const std::string& run_id) {
    REQUIRE(eventually([&] { return isTerminal(flows->getRun(run_id).value().status); }, 10s));
    return flows->getRun(run_id).value();
  }
  static const StepRecord& step(const RunRecord& r, const std::string& node) {
    for (const auto& s : r.steps) {
      if (s.node_id == node) return s;
    }
    FAIL("no step " << node);
    return r.steps.front();
  }
};

std::string task(const std::string& id, const std::string& payload) {
  return R"({"id": ")" + id + R"(", "type": "task", "task": {"class": "cpu_short", "payload": )" + payload + "}}";
}

std::string spec(const std::string& nodes, const std::string& edges, const std::string& extra = "") {
  return R"({"name": "t", )" + extra + R"("nodes": [)" + nodes + R"(], "edges": [)" + edges + "]}";
}

std::string edge(const std::string& a, const std::string& b) {
  return R"({"source": ")" + a + R"(", "target": ")" + b + R"("})";
}

}  // namespace

TEST_CASE("workflow: a diamond runs its middle steps side by side and passes outputs on", "[workflow]") {
  Rig rig;
  const auto wf = rig.create(spec(task("a", R"({"value": "A"})") + "," + task("b", R"({"outcome": "pair", "value": "B"})") +
                                      "," + task("c", R"({"outcome": "pair", "value": "C"})") + "," +
                                      task("d", R"({"value": "${steps.b.out}+${steps.c.out}+${input.who}"})"),
                                  edge("a", "b") + "," + edge("a", "c") + "," + edge("b", "d") + "," + edge("c", "d")));
  const auto run = rig.start(wf, "", {{"who", "me"}});
  CHECK(run.status == RunStatus::Running);
  const auto end = rig.waitEnd(run.id);
  CHECK(end.status == RunStatus::Succeeded);
  CHECK(rig.exec->most() >= 2);  // b and c ran at once
  CHECK(Rig::step(end, "d").result.at("out") == "B+C+me");
  CHECK(Rig::step(end, "b").started_ms <= Rig::step(end, "c").finished_ms);
  CHECK(Rig::step(end, "c").started_ms <= Rig::step(end, "b").finished_ms);
  // The run's end and its event are one write, queued just after the engine answers "ended".
  CHECK(eventually([&] { return eventCount(rig.store, "workflow_completed") == 1; }, 5s));
  CHECK(eventCount(rig.store, "workflow_started") == 1);
  CHECK(eventCount(rig.store, "workflow_step_started") == 4);
  CHECK(eventCount(rig.store, "workflow_step_completed") == 4);
  CHECK(eventCount(rig.store, "task_completed") == 4);
}

TEST_CASE("workflow: a step retries by its own policy", "[workflow]") {
  Rig rig;
  const auto wf = rig.create(spec(R"({"id": "a", "type": "task", "retry": {"max_attempts": 3, "initial_interval_ms": 0},
                                      "task": {"class": "cpu_short", "payload": {"outcome": "fail_once"}}})",
                                  ""));
  const auto end = rig.waitEnd(rig.start(wf).id);
  CHECK(end.status == RunStatus::Succeeded);
  CHECK(Rig::step(end, "a").attempts == 2);
}

TEST_CASE("workflow: the stop policy cancels running steps and skips the rest", "[workflow]") {
  Rig rig;
  const auto wf = rig.create(spec(task("a", "{}") + "," + task("bad", R"({"outcome": "fail"})") + "," +
                                      task("slow", R"({"outcome": "block"})") + "," + task("after", "{}"),
                                  edge("a", "bad") + "," + edge("a", "slow") + "," + edge("slow", "after")));
  const auto end = rig.waitEnd(rig.start(wf).id);
  CHECK(end.status == RunStatus::Failed);
  CHECK_THAT(end.error, Catch::Contains("step 'bad' failed"));
  CHECK(Rig::step(end, "slow").status == StepStatus::Failed);  // cancelled while it ran
  CHECK(Rig::step(end, "after").status == StepStatus::Skipped);
  CHECK(rig.exec->starts(end.id + ".after") == 0);
}

TEST_CASE("workflow: the continue policy lets independent branches finish", "[workflow]") {
  Rig rig;
  const auto wf = rig.create(spec(task("bad", R"({"outcome": "fail"})") + "," + task("child", "{}") + "," +
                                      task("other", "{}") + "," + task("other2", "{}"),
                                  edge("bad", "child") + "," + edge("other", "other2"), R"("failure_policy": "continue", )"));
  const auto end = rig.waitEnd(rig.start(wf).id);
  CHECK(end.status == RunStatus::Failed);
  CHECK(Rig::step(end, "child").status == StepStatus::Skipped);
  CHECK(Rig::step(end, "other2").status == StepStatus::Succeeded);
}

TEST_CASE("workflow: cancel mid-run; the same idempotency key returns the same run", "[workflow]") {
  Rig rig;
  const auto wf = rig.create(spec(task("slow", R"({"outcome": "block"})") + "," + task("next", "{}"), edge("slow", "next")));
  const auto run = rig.start(wf, "key-1");
  CHECK(rig.start(wf, "key-1").id == run.id);
  CHECK(rig.start(wf, "key-2").id != run.id);
  REQUIRE(eventually([&] { return rig.exec->starts(run.id + ".slow") == 1; }, 5s));
  REQUIRE(rig.flows->cancelRun(run.id).ok());
  const auto end = rig.waitEnd(run.id);
  CHECK(end.status == RunStatus::Cancelled);
  CHECK(Rig::step(end, "next").status == StepStatus::Skipped);
  CHECK(rig.flows->cancelRun(run.id).kind() == dspy::ErrorKind::FailedPrecondition);
  CHECK(rig.flows->cancelRun("nope").kind() == dspy::ErrorKind::NotFound);
}

TEST_CASE("workflow: after a stop and a restart the run goes on; finished steps do not run again", "[workflow]") {
  Rig rig;
  const auto wf = rig.create(spec(task("first", "{}") + "," + task("slow", R"({"outcome": "block"})") + "," +
                                      task("last", "{}"),
                                  edge("first", "slow") + "," + edge("slow", "last")));
  const auto run = rig.start(wf);
  REQUIRE(eventually([&] { return rig.exec->starts(run.id + ".slow") == 1; }, 5s));
  rig.halt();  // the task engine gives the running attempt back
  rig.exec->release();
  rig.boot();
  const auto end = rig.waitEnd(run.id);
  CHECK(end.status == RunStatus::Succeeded);
  CHECK(rig.exec->starts(run.id + ".first") == 1);
  CHECK(rig.exec->starts(run.id + ".slow") == 2);  // interrupted once, then run again
  CHECK(rig.exec->starts(run.id + ".last") == 1);
}

TEST_CASE("workflow: nodes without tasks, and steps that cannot run, say why", "[workflow]") {
  Rig rig;
  const auto wf = rig.create(spec(
      R"({"id": "r", "type": "reward", "reward": {"metric": "accuracy"}},
         {"id": "dep", "type": "deployment", "deployment": {"tenant": "t", "domain": "d", "channel": "c",
          "task": {"class": "cpu_short", "payload": {"value": "deployed"}}}},
         {"id": "svc", "type": "services", "services": {"services": ["redis"]}},
         {"id": "t", "type": "training", "training": {"method": "sft", "skill": "s"}},
         {"id": "gpu", "type": "signature", "signature": {"prompt": "p", "execution_domain": "gpu"}},
         {"id": "ref", "type": "task", "task": {"class": "cpu_short", "payload": {"v": "${input.missing}"}}})",
      edge("r", "svc"), R"("failure_policy": "continue", )"));
  const auto end = rig.waitEnd(rig.start(wf).id);
  CHECK(Rig::step(end, "r").status == StepStatus::Succeeded);
  CHECK(Rig::step(end, "r").task_id.empty());  // an event only
  CHECK(Rig::step(end, "dep").result.at("out") == "deployed");  // its event, then its task
  CHECK(eventCount(rig.store, "workflow_deployment") == 1);
  CHECK(Rig::step(end, "svc").status == StepStatus::Succeeded);
  // Training is a gpu_slurm task (this rig has no such class).
  CHECK_THAT(Rig::step(end, "t").error, Catch::Contains("unknown task class 'gpu_slurm'"));
  CHECK_THAT(Rig::step(end, "gpu").error, Catch::Contains("gpu_slurm"));
  CHECK_THAT(Rig::step(end, "ref").error, Catch::Contains("the run has no input 'missing'"));
  CHECK(end.status == RunStatus::Failed);
  CHECK(eventCount(rig.store, "workflow_reward") == 1);
}

TEST_CASE("workflow: versions are kept; unknown workflows and bad specs are refused", "[workflow]") {
  Rig rig;
  const std::string text = spec(task("a", "{}"), "");
  auto w1 = rig.flows->putWorkflow(text, "wf1", WorkflowEngine::PutMode::Create);
  REQUIRE(w1.ok());
  CHECK(w1.value().version == 1);
  CHECK(rig.flows->putWorkflow(text, "wf1", WorkflowEngine::PutMode::Create).kind() == dspy::ErrorKind::AlreadyExists);
  auto w2 = rig.flows->putWorkflow(spec(task("a", "{}") + "," + task("b", "{}"), ""), "wf1", WorkflowEngine::PutMode::Replace);
  REQUIRE(w2.ok());
  CHECK(w2.value().version == 2);
  CHECK(rig.flows->history("wf1").value().size() == 2);
  CHECK(rig.flows->putWorkflow(text, "nope", WorkflowEngine::PutMode::Replace).kind() == dspy::ErrorKind::NotFound);
  CHECK(rig.flows->putWorkflow("{}", "", WorkflowEngine::PutMode::Create).kind() == dspy::ErrorKind::InvalidArgument);
  std::promise<dspy::Result<RunRecord>> p;
  rig.flows->startRun("nope", "", {}, [&](dspy::Result<RunRecord> r) { p.set_value(std::move(r)); });
  CHECK(p.get_future().get().kind() == dspy::ErrorKind::NotFound);
  // A run uses the version current at its start.
  const auto end = rig.waitEnd(rig.start("wf1").id);
  CHECK(end.workflow_version == 2);
  CHECK(end.steps.size() == 2);
}


TEST_CASE("workflow: runs whose steps all end at once (event-only nodes) end cleanly", "[workflow]") {
  Rig rig;
  // One reward node: the run ends inside its own start. Then a chain and a fan-out of
  // them: every step ends while the engine is still walking the graph.
  const auto one = rig.create(spec(R"({"id": "r", "type": "reward", "reward": {"metric": "m"}})", ""));
  const auto chain = rig.create(spec(R"({"id": "a", "type": "reward", "reward": {"metric": "m"}},
                                      {"id": "b", "type": "reward", "reward": {"metric": "m"}},
                                      {"id": "c", "type": "reward", "reward": {"metric": "m"}},
                                      {"id": "t", "type": "training", "training": {"method": "sft", "skill": "s"}})",
                                     edge("a", "b") + "," + edge("a", "c") + "," + edge("a", "t"),
                                     R"("failure_policy": "continue", )"));
  for (int i = 0; i < 20; ++i) {
    const auto e1 = rig.waitEnd(rig.start(one).id);
    CHECK(e1.status == RunStatus::Succeeded);
    const auto e2 = rig.waitEnd(rig.start(chain).id);
    CHECK(e2.status == RunStatus::Failed);  // the training step cannot run yet (continue policy)
    CHECK(Rig::step(e2, "b").status == StepStatus::Succeeded);
  }
  CHECK(eventually([&] { return eventCount(rig.store, "workflow_completed") == 20; }, 5s));
  CHECK(eventually([&] { return eventCount(rig.store, "workflow_failed") == 20; }, 5s));
  CHECK(rig.flows->liveRuns() == 0);
}
