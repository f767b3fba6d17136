// The task engine with an in-memory store, scripted executors and a fake clock:
// ordering, limits, isolation of failures, retries (exact delays, no real waiting),
// cancellation, duplicates, recovery, watchers, the observer.
#include <catch2/catch.hpp>

#include <atomic>

#include <condition_variable>
#include <future>
#include <mutex>

#include "orchestrator/store/MemoryTaskStore.h"
#include "orchestrator/store/SqliteTaskStore.h"
#include "orchestrator/scheduler/TaskEngine.h"
#include "tests/support/Process.h"

using namespace dspy::orchestrator;
using namespace std::chrono_literals;
using dspy::test::eventually;

namespace {

// Each attempt waits at a gate until the test opens it (or cancel), then succeeds,
// fails or fails once according to the payload's "outcome".
class GateExecutor final : public Executor {
 public:
  std::string kind() const override { return "gate"; }
  dspy::Status validate(const dspy::Payload& p) const override {
    if (p.count("reject")) return dspy::Error{"rejected by validate", dspy::ErrorKind::InvalidArgument};
    return dspy::Status::Ok();
  }
  ExecOutcome execute(const ExecRequest& req, std::stop_token cancel) override {
    std::unique_lock lock(mu_);
    started_.push_back(req.task_id);
    ++running_;
    max_by_class_[req.cls] = std::max(max_by_class_[req.cls], ++by_class_[req.cls]);
    cv_.notify_all();
    cv_.wait(lock, cancel, [&] { return open_ || permits_ > 0; });
    --running_;
    --by_class_[req.cls];
    if (cancel.stop_requested()) return ExecOutcome::failure("cancelled", false);
    if (!open_) --permits_;
    const auto outcome = req.payload.count("outcome") ? req.payload.at("outcome") : "ok";
    attempts_[req.task_id]++;
    if (outcome == "fail" || (outcome == "fail_once" && req.attempt == 1)) {
      return ExecOutcome::failure("scripted failure", true);
    }
    if (outcome == "fatal") return ExecOutcome::failure("fatal", false);
    ExecOutcome o;
    o.success = true;
    o.result["echo"] = req.task_id;
    return o;
  }
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void release(int n) {
    std::lock_guard lock(mu_);
    permits_ += n;
    cv_.notify_all();
  }
  int running() {
    std::lock_guard lock(mu_);
    return running_;
  }
  std::vector<std::string> started() {
    std::lock_guard lock(mu_);
    return started_;
  }
  int maxRunning(const std::string& cls) {
    std::lock_guard lock(mu_);
    return max_by_class_[cls];
  }
  int attempts(const std::string& id) {
    std::lock_guard lock(mu_);
    return attempts_[id];
  }

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  bool open_ = false;
  int permits_ = 0;
  int running_ = 0;
  std::vector<std::string> started_;
  std::map<std::string, int> attempts_;
  std::map<std::string, int> by_class_, max_by_class_;
};

// Counts what the engine reports.
struct CountingObserver final : EngineObserver {
  std::mutex mu;
  std::map<std::string, int> counts;
  void add(const std::string& k) {
    std::lock_guard lock(mu);
    ++counts[k];
  }
  int get(const std::string& k) {
    std::lock_guard lock(mu);
    return counts[k];
  }
  void onAccepted(const std::string& cls) override { add("accepted " + cls); }
  void onRejected(const std::string& cls, const std::string& reason) override { add("rejected " + cls + " " + reason); }
  void onStarted(const std::string& cls, double) override { add("started " + cls); }
  void onAttemptEnded(const std::string& cls, double) override { add("ended " + cls); }
  void onRetryScheduled(const std::string& cls) override { add("retry " + cls); }
  void onFinished(const std::string& cls, TaskStatus s) override { add(std::string(toString(s)) + " " + cls); }
};

struct Rig {
  dspy::FakeClock clock;
  CountingObserver observer;
  MemoryTaskStore store;
  std::shared_ptr<GateExecutor> gate = std::make_shared<GateExecutor>();
  std::unique_ptr<TaskEngine> engine;

  explicit Rig(int limit = 1, RetryPolicy retry = {.max_attempts = 3, .initial_interval = 10ms},
               int queue_in_memory = 2000) {
    EngineConfig cfg;
    cfg.queue_in_memory = queue_in_memory;
    ClassConfig c;
    c.executor = "gate";
    c.limiter = LimiterConfig{.kind = "fixed", .initial = limit, .min = 1, .max = limit};
    c.retry = retry;
    cfg.classes["a"] = c;
    cfg.classes["b"] = c;
    cfg.max_payload_bytes = 1000;
    engine = std::make_unique<TaskEngine>(cfg, store, TaskEngine::Executors{{"a", gate}, {"b", gate}}, clock,
                                          &observer);
  }
  ~Rig() {
    gate->open();
    engine->stop();
  }
  dspy::Result<std::string> submit(SubmitRequest r) {
    std::promise<dspy::Result<std::string>> p;
    auto f = p.get_future();
    engine->submit(std::move(r), [&p](dspy::Result<std::string> res) { p.set_value(std::move(res)); });
    return f.get();
  }
  TaskStatus status(const std::string& id) { return engine->get(id).value().status; }
  bool waitStatus(const std::string& id, TaskStatus s) {
    return eventually([&] { return engine->get(id).ok() && status(id) == s; }, 5s);
  }
  // Waits until the task failed `attempts` times and waits for its retry.
  bool waitRetry(const std::string& id, int attempts) {
    return eventually(
        [&] {
          auto t = engine->get(id);
          return t.ok() && t.value().status == TaskStatus::Pending && t.value().attempts == attempts &&
                 t.value().not_before_ms > 0;
        },
        5s);
  }
  std::int64_t nowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock.systemTime().time_since_epoch()).count();
  }
};

}  // namespace

TEST_CASE("engine: higher priority first, strict FIFO within a priority", "[orchestrator][engine]") {
  Rig rig(1);
  rig.engine->start();
  REQUIRE(rig.submit({.id = "blocker", .cls = "a"}).ok());
  REQUIRE(eventually([&] { return rig.gate->running() == 1; }, 5s));
  for (const auto& [id, prio] : std::vector<std::pair<std::string, int>>{
           {"low1", 0}, {"high1", 5}, {"low2", 0}, {"mid1", 2}, {"high2", 5}, {"low3", 0}, {"neg", -1}}) {
    REQUIRE(rig.submit({.id = id, .cls = "a", .priority = prio}).ok());
  }
  rig.gate->open();
  REQUIRE(rig.waitStatus("neg", TaskStatus::Completed));
  CHECK(rig.gate->started() ==
        std::vector<std::string>{"blocker", "high1", "high2", "mid1", "low1", "low2", "low3", "neg"});
}

TEST_CASE("engine: per-class limits hold and classes do not block each other", "[orchestrator][engine]") {
  Rig rig(2);
  rig.engine->start();
  for (int i = 0; i < 6; ++i) REQUIRE(rig.submit({.id = "a" + std::to_string(i), .cls = "a"}).ok());
  REQUIRE(eventually([&] { return rig.gate->running() == 2; }, 5s));
  REQUIRE(rig.submit({.id = "b0", .cls = "b"}).ok());
  REQUIRE(eventually([&] { return rig.gate->running() == 3; }, 5s));
  auto stats = rig.engine->stats();
  CHECK(stats.classes["a"].inflight == 2);
  CHECK(stats.classes["a"].queued == 4);
  CHECK(stats.classes["b"].inflight == 1);
  rig.gate->open();
  for (int i = 0; i < 6; ++i) REQUIRE(rig.waitStatus("a" + std::to_string(i), TaskStatus::Completed));
  CHECK(rig.gate->maxRunning("a") == 2);
  CHECK(rig.gate->maxRunning("b") == 1);
}

TEST_CASE("engine: a failing task does not affect the others", "[orchestrator][engine]") {
  Rig rig(2, RetryPolicy{.max_attempts = 1});
  rig.engine->start();
  rig.gate->open();
  REQUIRE(rig.submit({.id = "ok1", .cls = "a"}).ok());
  REQUIRE(rig.submit({.id = "bad", .cls = "a", .payload = {{"outcome", "fail"}}}).ok());
  REQUIRE(rig.submit({.id = "ok2", .cls = "a"}).ok());
  REQUIRE(rig.waitStatus("bad", TaskStatus::Failed));
  REQUIRE(rig.waitStatus("ok1", TaskStatus::Completed));
  REQUIRE(rig.waitStatus("ok2", TaskStatus::Completed));
  CHECK(rig.engine->get("bad").value().error == "scripted failure");
  REQUIRE(rig.submit({.id = "ok3", .cls = "a"}).ok());
  CHECK(rig.waitStatus("ok3", TaskStatus::Completed));
}

TEST_CASE("engine: retries by policy; non-retryable failures fail at once", "[orchestrator][engine]") {
  Rig rig(4, RetryPolicy{.max_attempts = 3, .initial_interval = 20ms, .multiplier = 2});
  rig.engine->start();
  rig.gate->open();
  const std::int64_t t0 = rig.nowMs();
  REQUIRE(rig.submit({.id = "broken", .cls = "a", .payload = {{"outcome", "fail"}}}).ok());
  REQUIRE(rig.submit({.id = "fatal", .cls = "a", .payload = {{"outcome", "fatal"}}}).ok());
  REQUIRE(rig.waitStatus("fatal", TaskStatus::Failed));
  CHECK(rig.gate->attempts("fatal") == 1);
  // The clock stands still: the retry waits exactly its delay, then runs.
  REQUIRE(rig.waitRetry("broken", 1));
  CHECK(rig.engine->get("broken").value().not_before_ms == t0 + 20);
  rig.clock.advance(19ms);
  CHECK(rig.engine->get("broken").value().attempts == 1);
  rig.clock.advance(1ms);
  REQUIRE(rig.waitRetry("broken", 2));
  CHECK(rig.engine->get("broken").value().not_before_ms == t0 + 20 + 40);  // doubled
  rig.clock.advance(40ms);
  REQUIRE(rig.waitStatus("broken", TaskStatus::Failed));
  const auto t = rig.engine->get("broken").value();
  CHECK(t.attempts == 3);
  CHECK(rig.gate->attempts("broken") == 3);
  CHECK(t.finished_ms - t.submitted_ms == 60);
  // A task that fails once completes on its second attempt.
  REQUIRE(rig.submit({.id = "flaky", .cls = "a", .payload = {{"outcome", "fail_once"}}}).ok());
  REQUIRE(rig.waitRetry("flaky", 1));
  rig.clock.advance(20ms);
  REQUIRE(rig.waitStatus("flaky", TaskStatus::Completed));
  CHECK(rig.engine->get("flaky").value().attempts == 2);
  // The observer heard all of it.
  CHECK(rig.observer.get("accepted a") == 3);
  CHECK(rig.observer.get("started a") == 6);
  CHECK(eventually([&] { return rig.observer.get("ended a") == 6; }, 5s));
  CHECK(rig.observer.get("retry a") == 3);
  CHECK(rig.observer.get("failed a") == 2);
  CHECK(rig.observer.get("completed a") == 1);
}

TEST_CASE("engine: cancel a queued task and a running one", "[orchestrator][engine]") {
  Rig rig(1);
  rig.engine->start();
  REQUIRE(rig.submit({.id = "run", .cls = "a"}).ok());
  REQUIRE(rig.submit({.id = "queued", .cls = "a"}).ok());
  REQUIRE(eventually([&] { return rig.gate->running() == 1; }, 5s));
  REQUIRE(rig.engine->cancel("queued").ok());
  CHECK(rig.status("queued") == TaskStatus::Cancelled);
  REQUIRE(rig.engine->cancel("run").ok());
  REQUIRE(rig.waitStatus("run", TaskStatus::Cancelled));
  CHECK(rig.gate->started() == std::vector<std::string>{"run"});
  auto again = rig.engine->cancel("run");
  CHECK(again.kind() == dspy::ErrorKind::FailedPrecondition);
  CHECK(rig.engine->cancel("nope").kind() == dspy::ErrorKind::NotFound);
}

TEST_CASE("engine: duplicate ids - the same request again is accepted, a different one refused",
          "[orchestrator][engine]") {
  Rig rig(1);
  rig.engine->start();
  REQUIRE(rig.submit({.id = "d", .cls = "a", .payload = {{"k", "v"}}}).ok());
  auto same = rig.submit({.id = "d", .cls = "a", .payload = {{"k", "v"}}});
  REQUIRE(same.ok());
  CHECK(same.value() == "d");
  auto other = rig.submit({.id = "d", .cls = "a", .payload = {{"k", "other"}}});
  REQUIRE_FALSE(other.ok());
  CHECK(other.kind() == dspy::ErrorKind::AlreadyExists);
  CHECK(rig.engine->stats().submitted == 1);
}

TEST_CASE("engine: bad submissions are refused and change nothing", "[orchestrator][engine]") {
  Rig rig(1);
  rig.engine->start();
  auto kind = [&](SubmitRequest r) {
    auto res = rig.submit(std::move(r));
    return res.ok() ? dspy::ErrorKind::Internal : res.kind();
  };
  CHECK(kind({.id = "x", .cls = "nope"}) == dspy::ErrorKind::InvalidArgument);
  CHECK(kind({.id = "bad id", .cls = "a"}) == dspy::ErrorKind::InvalidArgument);
  CHECK(kind({.id = "big", .cls = "a", .payload = {{"k", std::string(2000, 'x')}}}) == dspy::ErrorKind::InvalidArgument);
  CHECK(kind({.id = "pj", .cls = "a", .payload = {{"payload_json", "{nope"}}}) == dspy::ErrorKind::InvalidArgument);
  CHECK(kind({.id = "to", .cls = "a", .payload = {{"timeout_seconds", "-3"}}}) == dspy::ErrorKind::InvalidArgument);
  CHECK(kind({.id = "rej", .cls = "a", .payload = {{"reject", "1"}}}) == dspy::ErrorKind::InvalidArgument);
  CHECK(rig.engine->stats().submitted == 0);
  CHECK(rig.observer.get("rejected a invalid") == 5);
  CHECK(rig.observer.get("rejected unknown invalid") == 1);
  CHECK(rig.engine->get("x").kind() == dspy::ErrorKind::NotFound);
  // A missing id is generated; a missing class is cpu_short (not configured here).
  auto gen = rig.submit({.cls = "a"});
  REQUIRE(gen.ok());
  CHECK(gen.value().rfind("task-", 0) == 0);
  CHECK(kind({}) == dspy::ErrorKind::InvalidArgument);
}

TEST_CASE("engine: a batch answers once, one outcome per request in order, partial failure per task",
          "[orchestrator][engine]") {
  Rig rig(1);
  rig.engine->start();
  REQUIRE(rig.submit({.id = "taken", .cls = "a", .payload = {{"k", "v"}}}).ok());
  std::vector<SubmitRequest> batch;
  for (int i = 0; i < 50; ++i) batch.push_back({.id = "b" + std::to_string(i), .cls = i % 2 == 0 ? "a" : "b"});
  batch.push_back({.id = "bad id", .cls = "a"});                           // 50: invalid
  batch.push_back({.id = "taken", .cls = "a", .payload = {{"k", "x"}}});   // 51: a different request
  batch.push_back({.id = "taken", .cls = "a", .payload = {{"k", "v"}}});   // 52: the same request again
  batch.push_back({.cls = "a"});                                           // 53: id generated
  std::promise<std::vector<dspy::Result<std::string>>> p;
  auto f = p.get_future();
  std::atomic<int> calls{0};
  rig.engine->submitBatch(std::move(batch), [&](std::vector<dspy::Result<std::string>> r) {
    ++calls;
    p.set_value(std::move(r));
  });
  const auto out = f.get();
  REQUIRE(out.size() == 54);
  for (int i = 0; i < 50; ++i) {
    REQUIRE(out[i].ok());
    CHECK(out[i].value() == "b" + std::to_string(i));
  }
  CHECK(out[50].kind() == dspy::ErrorKind::InvalidArgument);
  CHECK(out[51].kind() == dspy::ErrorKind::AlreadyExists);
  REQUIRE(out[52].ok());
  REQUIRE(out[53].ok());
  CHECK(out[53].value().rfind("task-", 0) == 0);
  CHECK(rig.engine->stats().submitted == 52);  // "taken", b0..b49, the generated one
  CHECK(calls == 1);
  std::promise<std::size_t> empty;
  rig.engine->submitBatch({}, [&](std::vector<dspy::Result<std::string>> r) { empty.set_value(r.size()); });
  CHECK(empty.get_future().get() == 0);
}

TEST_CASE("engine: recovery requeues pending tasks and retries or fails interrupted ones", "[orchestrator][engine]") {
  MemoryTaskStore store;
  auto put = [&](const std::string& id, TaskStatus s, int attempts, std::int64_t seq) {
    TaskRecord t;
    t.id = id;
    t.cls = "a";
    t.seq = seq;
    t.status = s;
    t.attempts = attempts;
    t.request_hash = requestHash("a", {}, 0, "");
    std::promise<void> done;
    store.insert(t, [&](dspy::Status) { done.set_value(); });
    done.get_future().wait();
  };
  put("p1", TaskStatus::Pending, 0, 1);
  put("r1", TaskStatus::Running, 1, 2);
  put("r3", TaskStatus::Running, 3, 3);
  put("c1", TaskStatus::Completed, 1, 4);
  auto gate = std::make_shared<GateExecutor>();
  gate->open();
  EngineConfig cfg;
  ClassConfig c;
  c.limiter = LimiterConfig{.kind = "fixed", .initial = 4, .min = 1, .max = 4};
  c.retry = RetryPolicy{.max_attempts = 3, .initial_interval = 10ms};
  cfg.classes["a"] = c;
  dspy::FakeClock clock;
  TaskEngine engine(cfg, store, {{"a", gate}}, clock, nullptr);
  REQUIRE(engine.recover().ok());
  engine.start();
  auto final = [&](const std::string& id) {
    eventually(
        [&] {
          clock.advance(1ms);  // the interrupted attempt's retry waits 10 ms of this clock
          return isTerminal(engine.get(id).value().status);
        },
        5s);
    return engine.get(id).value();
  };
  CHECK(final("p1").status == TaskStatus::Completed);
  CHECK(final("r1").status == TaskStatus::Completed);
  CHECK(final("r1").attempts == 2);
  CHECK(final("r3").status == TaskStatus::Failed);
  CHECK_THAT(final("r3").error, Catch::Contains("no attempts are left"));
  CHECK(gate->attempts("c1") == 0);
  CHECK(gate->attempts("r3") == 0);
  // New submissions continue the sequence after the recovered ones.
  std::promise<dspy::Result<std::string>> p;
  engine.submit({.id = "n", .cls = "a"}, [&](dspy::Result<std::string> r) { p.set_value(r); });
  REQUIRE(p.get_future().get().ok());
  CHECK(engine.get("n").value().seq == 5);
  // Stats count the history too (finished tasks are counted in the background).
  CHECK(eventually(
      [&] {
        auto st = engine.stats();
        return st.submitted == 5 && st.completed == 4 && st.failed == 1 && st.pending == 0;
      },
      5s));
  engine.stop();
}

TEST_CASE("engine: shutdown gives running tasks back to the queue without using an attempt", "[orchestrator][engine]") {
  Rig rig(1);
  rig.engine->start();
  REQUIRE(rig.submit({.id = "long", .cls = "a"}).ok());
  REQUIRE(eventually([&] { return rig.gate->running() == 1; }, 5s));
  rig.engine->stop();
  auto t = rig.store.get("long").value();
  REQUIRE(t.has_value());
  CHECK(t->status == TaskStatus::Pending);
  CHECK(t->attempts == 0);
}

TEST_CASE("engine: watchers see each change once, in order", "[orchestrator][engine]") {
  Rig rig(1, RetryPolicy{.max_attempts = 2, .initial_interval = 5ms});
  rig.engine->start();
  std::vector<TaskRecord> snapshot;
  auto w = rig.engine->watch({"w1"}, true, &snapshot);
  CHECK(snapshot.empty());
  REQUIRE(rig.submit({.id = "w1", .cls = "a", .payload = {{"outcome", "fail_once"}}}).ok());
  rig.gate->open();
  std::vector<std::string> seen;
  std::stop_source never;
  while (seen.empty() || seen.back() != "completed") {
    for (const auto& t : w->next(never.get_token())) {
      seen.push_back(toString(t.status));
      if (seen.size() == 3) rig.clock.advance(5ms);  // the retry's delay
    }
  }
  CHECK(seen == std::vector<std::string>{"pending", "running", "pending", "running", "completed"});
  rig.engine->unwatch(w);
}

TEST_CASE("engine: a reload raises a class's limit at once and reports what needs a restart", "[orchestrator][engine]") {
  Rig rig(1);
  rig.engine->start();
  for (int i = 0; i < 4; ++i) REQUIRE(rig.submit({.id = "r" + std::to_string(i), .cls = "a"}).ok());
  REQUIRE(eventually([&] { return rig.gate->running() == 1; }, 5s));
  EngineConfig next;
  ClassConfig a;
  a.executor = "gate";
  a.limiter = LimiterConfig{.kind = "fixed", .initial = 3, .min = 1, .max = 3};
  next.classes["a"] = a;
  ClassConfig changed = a;
  changed.executor = "noop";
  next.classes["b"] = changed;
  next.classes["c"] = a;
  next.max_payload_bytes = 10;
  const auto notes = rig.engine->reconfigure(next);
  CHECK(eventually([&] { return rig.gate->running() == 3; }, 5s));
  CHECK(rig.engine->stats().classes["a"].limit == 3);
  REQUIRE(notes.size() == 3);
  CHECK_THAT(notes[0], Catch::Contains("class 'a': limiter now fixed"));
  CHECK_THAT(notes[1], Catch::Contains("class 'b': executor 'noop' takes effect after a restart"));
  CHECK_THAT(notes[2], Catch::Contains("class 'c' is new"));
  // The new payload limit applies to the next submission.
  auto big = rig.submit({.id = "big", .cls = "a", .payload = {{"k", "0123456789"}}});
  CHECK(big.kind() == dspy::ErrorKind::InvalidArgument);
  // Unchanged settings are not "changed": a second identical reload is quiet.
  CHECK(rig.engine->reconfigure(next).size() == 2);
}

namespace {
// Dispatch order of (id, priority) pairs submitted in this order: priority descending,
// then submission order.
std::vector<std::string> dispatchOrder(const std::vector<std::pair<std::string, int>>& tasks) {
  auto sorted = tasks;
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> ids;
  for (const auto& t : sorted) ids.push_back(t.first);
  return ids;
}
}  // namespace

TEST_CASE("engine: a backlog beyond the queue in memory waits in the store and still runs in order",
          "[orchestrator][engine][backlog]") {
  Rig rig(1, {.max_attempts = 3, .initial_interval = 10ms}, 4);
  rig.engine->start();
  REQUIRE(rig.submit({.id = "blocker", .cls = "a"}).ok());
  REQUIRE(eventually([&] { return rig.gate->running() == 1; }, 5s));
  std::vector<std::pair<std::string, int>> tasks;
  for (int i = 0; i < 40; ++i) tasks.emplace_back("t" + std::to_string(i), (i * 7) % 3);
  // Half one by one, half as a batch.
  for (int i = 0; i < 20; ++i) REQUIRE(rig.submit({.id = tasks[i].first, .cls = "a", .priority = tasks[i].second}).ok());
  std::vector<SubmitRequest> batch;
  for (int i = 20; i < 40; ++i) batch.push_back({.id = tasks[i].first, .cls = "a", .priority = tasks[i].second});
  std::promise<std::vector<dspy::Result<std::string>>> p;
  rig.engine->submitBatch(std::move(batch), [&](std::vector<dspy::Result<std::string>> r) { p.set_value(std::move(r)); });
  for (const auto& r : p.get_future().get()) REQUIRE(r.ok());

  auto st = rig.engine->stats().classes.at("a");
  CHECK(st.queued == 40);
  CHECK(st.queued_in_store >= 40 - 4);  // only the head of the backlog stays in memory
  // Tasks that wait in the store behave as queued ones: readable, resubmittable, cancellable.
  const auto& late = tasks[35];
  CHECK(rig.status(late.first) == TaskStatus::Pending);
  CHECK(rig.submit({.id = late.first, .cls = "a", .priority = late.second}).ok());
  CHECK(rig.submit({.id = late.first, .cls = "a", .priority = late.second + 1}).kind() ==
        dspy::ErrorKind::AlreadyExists);
  REQUIRE(rig.engine->cancel("t37").ok());
  CHECK(rig.status("t37") == TaskStatus::Cancelled);
  CHECK(rig.engine->stats().classes.at("a").queued == 39);

  rig.gate->open();
  auto expected = dispatchOrder(tasks);
  expected.erase(std::find(expected.begin(), expected.end(), "t37"));
  REQUIRE(eventually([&] { return rig.gate->started().size() == expected.size() + 1; }, 10s));
  auto started = rig.gate->started();
  CHECK(started.front() == "blocker");
  started.erase(started.begin());
  CHECK(started == expected);
  for (const auto& id : expected) CHECK(rig.waitStatus(id, TaskStatus::Completed));
  CHECK(rig.status("t37") == TaskStatus::Cancelled);
  st = rig.engine->stats().classes.at("a");
  CHECK(st.queued == 0);
  CHECK(st.queued_in_store == 0);
}

TEST_CASE("engine: a higher priority task overtakes a backlog that waits in the store", "[orchestrator][engine][backlog]") {
  Rig rig(1, {.max_attempts = 3, .initial_interval = 10ms}, 4);
  rig.engine->start();
  REQUIRE(rig.submit({.id = "blocker", .cls = "a"}).ok());
  REQUIRE(eventually([&] { return rig.gate->running() == 1; }, 5s));
  for (int i = 0; i < 20; ++i) REQUIRE(rig.submit({.id = "low" + std::to_string(i), .cls = "a"}).ok());
  REQUIRE(rig.submit({.id = "urgent", .cls = "a", .priority = 9}).ok());
  rig.gate->release(2);  // the blocker, then the next one
  REQUIRE(eventually([&] { return rig.gate->started().size() >= 2; }, 5s));
  CHECK(rig.gate->started()[1] == "urgent");
}

TEST_CASE("engine: after a restart a stored backlog is counted, not loaded, and runs in order exactly once",
          "[orchestrator][engine][backlog]") {
  const auto dir = dspy::test::tempDir();
  auto gate = std::make_shared<GateExecutor>();
  EngineConfig cfg;
  cfg.queue_in_memory = 6;
  ClassConfig c;
  c.executor = "gate";
  c.limiter = LimiterConfig{.kind = "fixed", .initial = 1, .min = 1, .max = 1};
  c.retry = RetryPolicy{.max_attempts = 3, .initial_interval = 10ms};
  cfg.classes["a"] = c;
  dspy::FakeClock clock;
  std::vector<std::pair<std::string, int>> tasks;
  {
    auto store = SqliteTaskStore::open(dir, SyncMode::Normal);
    REQUIRE(store.ok());
    TaskEngine engine(cfg, *store.value(), {{"a", gate}}, clock, nullptr);
    REQUIRE(engine.recover().ok());
    engine.start();
    std::vector<SubmitRequest> batch;
    for (int i = 0; i < 50; ++i) {
      tasks.emplace_back("s" + std::to_string(i), i % 4 == 0 ? 1 : 0);
      batch.push_back({.id = tasks.back().first, .cls = "a", .payload = {{"n", std::to_string(i)}},
                       .priority = tasks.back().second});
    }
    std::promise<std::vector<dspy::Result<std::string>>> p;
    engine.submitBatch(std::move(batch), [&](std::vector<dspy::Result<std::string>> r) { p.set_value(std::move(r)); });
    for (const auto& r : p.get_future().get()) REQUIRE(r.ok());
    REQUIRE(eventually([&] { return gate->running() == 1; }, 5s));  // the first one runs, then we stop
    engine.stop();  // it goes back to the queue without using an attempt
  }
  auto store = SqliteTaskStore::open(dir, SyncMode::Normal);
  REQUIRE(store.ok());
  auto gate2 = std::make_shared<GateExecutor>();
  TaskEngine engine(cfg, *store.value(), {{"a", gate2}}, clock, nullptr);
  REQUIRE(engine.recover().ok());
  auto st = engine.stats().classes.at("a");
  CHECK(st.queued == 50);
  CHECK(st.queued_in_store == 50);
  engine.start();
  gate2->open();
  REQUIRE(eventually([&] { return gate2->started().size() == 50; }, 10s));
  CHECK(gate2->started() == dispatchOrder(tasks));
  for (const auto& [id, prio] : tasks) {
    REQUIRE(eventually([&] { return engine.get(id).value().status == TaskStatus::Completed; }, 5s));
    CHECK(engine.get(id).value().attempts == 1);
    CHECK(gate2->attempts(id) == 1);
  }
  engine.stop();
}

namespace {

// A MemoryTaskStore whose inserts wait until the test lets them through (flush() lets
// them through first, as a shutdown's final flush would see them finish).
class HoldingStore final : public TaskStore {
 public:
  MemoryTaskStore inner;
  void insert(const TaskRecord& task, Done done) override {
    std::unique_lock lock(mu_);
    if (holding_) {
      held_.emplace_back(task, std::move(done));
      return;
    }
    lock.unlock();
    inner.insert(task, std::move(done));
  }
  void insertMany(std::vector<TaskRecord> tasks, ManyDone done) override { inner.insertMany(std::move(tasks), std::move(done)); }
  void update(const TaskRecord& task, Done done) override { inner.update(task, std::move(done)); }
  void flush() override {
    release();
    inner.flush();
  }
  dspy::Result<std::optional<TaskRecord>> get(const std::string& id) override { return inner.get(id); }
  dspy::Result<std::vector<TaskRecord>> unfinished() override { return inner.unfinished(); }
  dspy::Result<std::vector<TaskRecord>> list(const TaskFilter& f) override { return inner.list(f); }
  dspy::Result<std::map<TaskStatus, std::int64_t>> countByStatus() override { return inner.countByStatus(); }
  dspy::Result<std::int64_t> maxSeq() override { return inner.maxSeq(); }
  dspy::Result<std::vector<TaskRecord>> queued(const std::string& q, std::optional<QueuePos> from, int limit) override {
    return inner.queued(q, from, limit);
  }
  dspy::Result<std::vector<PendingGroup>> pendingGroups() override { return inner.pendingGroups(); }
  dspy::Result<std::vector<TaskRecord>> withStatus(TaskStatus s) override { return inner.withStatus(s); }
  dspy::Status moveQueue(const std::string& c, const std::string& f, const std::string& t) override {
    return inner.moveQueue(c, f, t);
  }
  std::string health() override { return inner.health(); }

  void hold() {
    std::lock_guard lock(mu_);
    holding_ = true;
  }
  std::size_t held() {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  void release() {
    std::vector<std::pair<TaskRecord, Done>> out;
    {
      std::lock_guard lock(mu_);
      holding_ = false;
      out.swap(held_);
    }
    for (auto& [t, d] : out) inner.insert(t, std::move(d));
  }

 private:
  std::mutex mu_;
  bool holding_ = false;
  std::vector<std::pair<TaskRecord, Done>> held_;
};

struct HeldRig {
  dspy::FakeClock clock;
  HoldingStore store;
  std::shared_ptr<GateExecutor> gate = std::make_shared<GateExecutor>();
  std::unique_ptr<TaskEngine> engine;
  HeldRig() {
    EngineConfig cfg;
    ClassConfig c;
    c.executor = "gate";
    c.limiter = LimiterConfig{.kind = "fixed", .initial = 1, .min = 1, .max = 1};
    cfg.classes["a"] = c;
    engine = std::make_unique<TaskEngine>(cfg, store, TaskEngine::Executors{{"a", gate}}, clock);
  }
  ~HeldRig() {
    gate->open();
    engine->stop();
  }
  // Submits without waiting; the answer arrives once the insert is through.
  std::future<dspy::Result<std::string>> submitAsync(SubmitRequest r) {
    auto p = std::make_shared<std::promise<dspy::Result<std::string>>>();
    auto f = p->get_future();
    engine->submit(std::move(r), [p](dspy::Result<std::string> res) { p->set_value(std::move(res)); });
    return f;
  }
  // Starts the engine and submits `id` into the free slot, its insert held.
  std::future<dspy::Result<std::string>> startAndHoldFirst(const std::string& id) {
    engine->start();
    store.hold();
    auto answer = submitAsync({.id = id, .cls = "a"});
    REQUIRE(store.held() == 1);
    return answer;
  }
};

}  // namespace

TEST_CASE("engine: a task admitted into a free slot is accepted and started by its insert", "[orchestrator][engine]") {
  Rig rig(1);
  rig.engine->start();
  REQUIRE(rig.submit({.id = "first", .cls = "a"}).ok());
  // Durable as running at once: no second write between acceptance and the attempt.
  auto stored = rig.store.get("first").value();
  REQUIRE(stored.has_value());
  CHECK(stored->status == TaskStatus::Running);
  CHECK(stored->attempts == 1);
  CHECK(stored->started_ms > 0);
  REQUIRE(eventually([&] { return rig.gate->running() == 1; }, 5s));
  // The slot is taken: the next one is inserted pending and waits.
  REQUIRE(rig.submit({.id = "second", .cls = "a"}).ok());
  CHECK(rig.store.get("second").value()->status == TaskStatus::Pending);
  rig.gate->open();
  REQUIRE(rig.waitStatus("second", TaskStatus::Completed));
  rig.store.flush();
  // Each task's events, in order with their sequences: submitted (as pending), started,
  // completed; the insert of "first" wrote the first two.
  auto events = rig.store.readEvents(0, 100, false).value();
  std::map<std::string, std::vector<std::string>> by_task;
  for (const auto& e : events) {
    by_task[e.resource_id].push_back(e.type + "#" + std::to_string(e.resource_seq) + ":" + e.data.at("status"));
  }
  const std::vector<std::string> want{"task_submitted#1:pending", "task_started#2:running",
                                      "task_completed#3:completed"};
  CHECK(by_task["first"] == want);
  CHECK(by_task["second"] == want);
  CHECK(rig.observer.get("started a") == 2);
  CHECK(rig.observer.get("accepted a") == 2);
}

TEST_CASE("engine: a task admitted into a slot but cancelled before its insert is durable never runs",
          "[orchestrator][engine]") {
  HeldRig rig;
  std::vector<TaskRecord> snapshot;
  auto w = rig.engine->watch({"c"}, true, &snapshot);
  auto answer = rig.startAndHoldFirst("c");
  REQUIRE(rig.engine->cancel("c").ok());
  rig.store.release();
  REQUIRE(answer.get().ok());
  REQUIRE(eventually([&] { return rig.engine->get("c").value().status == TaskStatus::Cancelled; }, 5s));
  // The watcher sees each change once: submitted, then cancelled.
  std::vector<std::string> seen;
  std::stop_source never;
  while (seen.empty() || seen.back() != "cancelled") {
    for (const auto& t : w->next(never.get_token())) seen.push_back(toString(t.status));
  }
  CHECK(seen == std::vector<std::string>{"pending", "cancelled"});
  rig.engine->unwatch(w);
  rig.store.flush();
  auto t = rig.store.get("c").value();
  CHECK(t->status == TaskStatus::Cancelled);
  CHECK(t->attempts == 0);
  // Its slot is free again: the next task runs.
  auto next = rig.submitAsync({.id = "n", .cls = "a"});
  REQUIRE(next.get().ok());
  REQUIRE(eventually([&] { return rig.gate->running() == 1; }, 5s));
  CHECK(rig.gate->started() == std::vector<std::string>{"n"});
}

TEST_CASE("engine: a shutdown before a slot-admitted insert is durable leaves the task queued, no attempt used",
          "[orchestrator][engine]") {
  HeldRig rig;
  auto answer = rig.startAndHoldFirst("s");
  rig.engine->stop();  // its final flush lets the insert through
  REQUIRE(answer.get().ok());
  auto t = rig.store.get("s").value();
  REQUIRE(t.has_value());
  CHECK(t->status == TaskStatus::Pending);
  CHECK(t->attempts == 0);
  CHECK(rig.gate->started().empty());
}

TEST_CASE("engine: a task admitted later does not take a slot ahead of one whose insert is still in flight",
          "[orchestrator][engine]") {
  HeldRig rig;
  rig.engine->start();
  auto blocker = rig.submitAsync({.id = "blocker", .cls = "a"});
  REQUIRE(blocker.get().ok());
  REQUIRE(eventually([&] { return rig.gate->running() == 1; }, 5s));
  rig.store.hold();
  auto early = rig.submitAsync({.id = "early", .cls = "a"});  // no slot: admitted to wait
  REQUIRE(rig.store.held() == 1);
  rig.gate->release(1);  // the blocker ends: its slot is free while "early" is still being written
  REQUIRE(eventually([&] { return rig.engine->get("blocker").value().status == TaskStatus::Completed; }, 5s));
  auto late = rig.submitAsync({.id = "late", .cls = "a"});  // also held: inserts are still held
  REQUIRE(rig.store.held() == 2);
  rig.store.release();
  REQUIRE(early.get().ok());
  REQUIRE(late.get().ok());
  rig.gate->open();
  REQUIRE(eventually([&] { return rig.engine->get("late").value().status == TaskStatus::Completed; }, 5s));
  CHECK(rig.gate->started() == std::vector<std::string>{"blocker", "early", "late"});
}
