// The Slurm executor against a fake Slurm (SlurmCommands) and the in-memory store:
// submission and its row, one squeue call per tick for every tracked job, state changes
// with their events, refusal, cancel, a job Slurm forgot, slurmctld away past the
// deadline, adoption after a restart (by row and by marker) and detach at shutdown.
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "orchestrator/slurm/SlurmExecutor.h"
#include "orchestrator/slurm/SlurmScript.h"
#include "orchestrator/store/MemoryTaskStore.h"

using namespace dspy;
using namespace dspy::orchestrator;
using slurm::JobState;

namespace {

class FakeSlurm final : public slurm::SlurmCommands {
 public:
  std::mutex mu;
  std::map<std::string, JobState> jobs;
  std::map<std::string, std::string> markers;
  std::vector<std::vector<std::string>> queue_calls;
  std::vector<std::string> cancelled;
  int next = 100, submits = 0, ended_calls = 0;
  std::atomic<int> submit_calls{0};  // answered or not
  std::atomic<bool> reachable{true};
  std::atomic<bool> forget{false};  // jobs unknown to squeue and to ended()
  std::string refuse;

  Result<std::string> submit(const std::vector<std::string>& args, const std::string&) override {
    ++submit_calls;
    std::lock_guard lock(mu);
    if (!reachable) return Error{"Unable to contact slurm controller", ErrorKind::Unavailable};
    if (!refuse.empty()) return Error{refuse, ErrorKind::InvalidArgument};
    const std::string id = std::to_string(next++);
    jobs[id] = JobState{.job_id = id, .element = id, .state = "PENDING"};
    for (const auto& a : args) {
      if (a.rfind("--comment=", 0) == 0) markers[a.substr(10)] = id;
    }
    ++submits;
    return id;
  }
  Result<std::vector<JobState>> queue(const std::vector<std::string>& ids) override {
    std::lock_guard lock(mu);
    if (!reachable) return Error{"Unable to contact slurm controller", ErrorKind::Unavailable};
    queue_calls.push_back(ids);
    std::vector<JobState> out;
    for (const auto& id : ids) {
      if (jobs.count(id) && !forget) out.push_back(jobs[id]);
    }
    return out;
  }
  Result<std::vector<JobState>> ended(const std::vector<std::string>& ids) override {
    std::lock_guard lock(mu);
    ++ended_calls;
    std::vector<JobState> out;
    for (const auto& id : ids) {
      if (jobs.count(id) && !forget) out.push_back(jobs[id]);
    }
    return out;
  }
  Result<std::string> findByMarker(const std::string& marker) override {
    std::lock_guard lock(mu);
    if (markers.count(marker)) return markers[marker];
    return Error{"none", ErrorKind::NotFound};
  }
  Status cancel(const std::vector<std::string>& ids) override {
    std::lock_guard lock(mu);
    for (const auto& id : ids) {
      cancelled.push_back(id);
      jobs[id].state = "CANCELLED";
    }
    return Status::Ok();
  }
  slurm::CallCounts counts() const override { return {}; }

  void set(const std::string& id, const std::string& state, int exit_code = 0) {
    std::lock_guard lock(mu);
    jobs[id].state = state;
    jobs[id].exit_code = exit_code;
    jobs[id].start_ms = 1'000;
    jobs[id].end_ms = slurm::meaningOf(state).terminal ? 2'000 : 0;
  }
  std::size_t queueCalls() {
    std::lock_guard lock(mu);
    return queue_calls.size();
  }
};

// One attempt's end, as the engine would receive it.
struct Ending {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ExecOutcome> outcomes;
  Executor::Finish finish() {
    return [this](ExecOutcome o) {
      std::lock_guard lock(mu);
      outcomes.push_back(std::move(o));
      cv.notify_all();
    };
  }
  ExecOutcome wait() {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [this] { return !outcomes.empty(); }));
    return outcomes.front();
  }
  std::size_t count() {
    std::lock_guard lock(mu);
    return outcomes.size();
  }
};

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return f();
}

struct Fixture {
  std::string dir;
  MemoryTaskStore store;
  std::shared_ptr<FakeSlurm> fake = std::make_shared<FakeSlurm>();
  std::unique_ptr<SlurmExecutor> ex;

  explicit Fixture(std::int64_t deadline_s = 600) {
    dir = (std::filesystem::temp_directory_path() / ("dspy-slurm-unit-" + std::to_string(::getpid()))).string();
    std::filesystem::create_directories(dir + "/templates");
    std::ofstream(dir + "/templates/command.sbatch") << "#!/bin/bash\n#SBATCH --ntasks=${NTASKS:-1}\nbash -c ${COMMAND:?}\n";
    SlurmConfig cfg;
    cfg.templates_dir = dir + "/templates";
    cfg.work_dir = dir + "/work";
    cfg.poll_min_ms = 10;
    cfg.poll_max_ms = 20;
    cfg.unreachable_deadline_s = deadline_s;
    ex = std::make_unique<SlurmExecutor>(cfg, store, fake);
    ex->start();
  }
  ~Fixture() {
    ex->stop();
    std::filesystem::remove_all(dir);
  }
  ExecRequest req(const std::string& id, int attempt = 1) {
    return ExecRequest{.task_id = id, .cls = "gpu_slurm", .payload = {{"command", "true"}}, .attempt = attempt};
  }
  std::vector<std::string> eventTypes(const std::string& task_id) {
    std::vector<std::string> out;
    auto events = store.readEvents(0, 100'000, false);
    for (const auto& e : events.value()) {
      if (e.resource_id == task_id) out.push_back(e.type);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("a job goes submitted, running, completed: one end, its row and its events in order", "[slurm]") {
  Fixture f;
  Ending end;
  f.ex->launch(f.req("t1"), {}, end.finish());
  auto row = f.store.getSlurmJob("t1", 1).value();
  REQUIRE(row);
  CHECK(row->job_id == "100");
  CHECK(row->state == "SUBMITTED");
  CHECK(std::filesystem::exists(row->script_path));
  f.fake->set("100", "RUNNING");
  REQUIRE(eventually([&] { return f.store.getSlurmJob("t1", 1).value()->state == "RUNNING"; }));
  f.fake->set("100", "COMPLETED", 0);
  const ExecOutcome o = end.wait();
  CHECK(o.success);
  CHECK(o.result.at("slurm_job_id") == "100");
  CHECK(o.result.at("exit_code") == "0");
  CHECK(f.store.getSlurmJob("t1", 1).value()->terminal);
  CHECK(f.eventTypes("t1") == std::vector<std::string>{"slurm_job_submitted", "slurm_job_started", "slurm_job_completed"});
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(end.count() == 1);
}

TEST_CASE("200 tracked jobs cost one squeue call per tick, each naming all of them", "[slurm]") {
  Fixture f;
  std::vector<std::unique_ptr<Ending>> ends;
  for (int i = 0; i < 200; ++i) {
    ends.push_back(std::make_unique<Ending>());
    f.ex->launch(f.req("j" + std::to_string(i)), {}, ends.back()->finish());
  }
  const std::size_t before = f.fake->queueCalls();
  REQUIRE(eventually([&] { return f.fake->queueCalls() >= before + 5; }));
  const SlurmStats s = f.ex->stats();
  {
    std::lock_guard lock(f.fake->mu);
    CHECK(static_cast<std::int64_t>(f.fake->queue_calls.size()) >= s.ticks);
    CHECK(static_cast<std::int64_t>(f.fake->queue_calls.size()) <= s.ticks + 1);
    for (std::size_t i = before; i < f.fake->queue_calls.size(); ++i) CHECK(f.fake->queue_calls[i].size() == 200);
    CHECK(f.fake->ended_calls == 0);  // nothing ended: no second call
  }
  for (int i = 0; i < 200; ++i) f.fake->set(std::to_string(100 + i), i % 2 ? "COMPLETED" : "FAILED", i % 2 ? 0 : 3);
  for (auto& e : ends) e->wait();
  CHECK(f.ex->stats().completed == 100);
  CHECK(f.ex->stats().failed == 100);
  CHECK(f.fake->ended_calls <= 3);  // the ended jobs are read in one batched call per tick
}

TEST_CASE("a job that exits 3 fails with Slurm's state, exit code and reason", "[slurm]") {
  Fixture f;
  Ending end;
  f.ex->launch(f.req("t3"), {}, end.finish());
  {
    std::lock_guard lock(f.fake->mu);
    f.fake->jobs["100"].reason = "NonZeroExitCode";
  }
  f.fake->set("100", "FAILED", 3);
  const ExecOutcome o = end.wait();
  CHECK_FALSE(o.success);
  CHECK_FALSE(o.retryable);
  CHECK(o.error.find("exit code 3") != std::string::npos);
  CHECK(o.error.find("NonZeroExitCode") != std::string::npos);
  CHECK(o.result.at("exit_code") == "3");
}

TEST_CASE("a refusal by sbatch ends the attempt with Slurm's message and no job", "[slurm]") {
  Fixture f;
  {
    std::lock_guard lock(f.fake->mu);
    f.fake->refuse = "Slurm refused the job: Invalid partition name specified";
  }
  Ending end;
  f.ex->launch(f.req("r1"), {}, end.finish());
  const ExecOutcome o = end.wait();
  CHECK_FALSE(o.retryable);
  CHECK(o.error.find("Invalid partition") != std::string::npos);
  CHECK(f.store.getSlurmJob("r1", 1).value()->state == "REFUSED");
  auto sub = f.ex->awaitSubmission("r1", std::chrono::milliseconds(10));
  REQUIRE(sub);
  CHECK(sub->job_id.empty());
  CHECK(f.eventTypes("r1") == std::vector<std::string>{"slurm_job_failed"});
}

TEST_CASE("cancel sends scancel and the attempt ends once Slurm says CANCELLED", "[slurm]") {
  Fixture f;
  std::stop_source cancel;
  Ending end;
  f.ex->launch(f.req("c1"), cancel.get_token(), end.finish());
  cancel.request_stop();
  const ExecOutcome o = end.wait();
  CHECK_FALSE(o.success);
  CHECK(o.result.at("slurm_state") == "CANCELLED");
  std::lock_guard lock(f.fake->mu);
  CHECK(f.fake->cancelled == std::vector<std::string>{"100"});
}

TEST_CASE("a job Slurm no longer knows is lost after a few ticks, not tracked forever", "[slurm]") {
  Fixture f;
  Ending end;
  f.ex->launch(f.req("l1"), {}, end.finish());
  f.fake->forget = true;
  const ExecOutcome o = end.wait();
  CHECK(o.error.find("no longer knows job 100") != std::string::npos);
  CHECK(f.store.getSlurmJob("l1", 1).value()->state == "LOST");
}

TEST_CASE("slurmctld away: jobs stay tracked until the deadline, then fail with that reason", "[slurm]") {
  Fixture f(2);
  Ending end;
  f.ex->launch(f.req("u1"), {}, end.finish());
  // A tick that reached Slurm: the deadline counts from it.
  const std::size_t calls = f.fake->queueCalls();
  REQUIRE(eventually([&] { return f.fake->queueCalls() > calls; }));
  const auto away = std::chrono::steady_clock::now();
  f.fake->reachable = false;
  REQUIRE(eventually([&] { return f.ex->health() != "ok"; }));
  const ExecOutcome o = end.wait();
  // Not before the deadline (2 s after the last answer, which came before `away`).
  CHECK(std::chrono::steady_clock::now() - away >= std::chrono::milliseconds(1500));
  CHECK(o.error.find("could not be reached") != std::string::npos);
  CHECK(f.store.getSlurmJob("u1", 1).value()->state == "UNREACHABLE");
}

TEST_CASE("slurmctld away at submission: sbatch is retried and the job submitted once it answers", "[slurm]") {
  Fixture f;
  f.fake->reachable = false;
  Ending end;
  std::jthread launcher([&] { f.ex->launch(f.req("s1"), {}, end.finish()); });
  // sbatch tried (and refused for the outage) twice: the row waits, without a job id.
  REQUIRE(eventually([&] { return f.fake->submit_calls >= 2; }));
  auto row = f.store.getSlurmJob("s1", 1).value();
  REQUIRE(row);
  CHECK(row->state == "SUBMITTING");
  CHECK(row->job_id.empty());
  f.fake->reachable = true;
  launcher.join();
  CHECK(f.store.getSlurmJob("s1", 1).value()->job_id == "100");
  f.fake->set("100", "COMPLETED");
  CHECK(end.wait().success);
  std::lock_guard lock(f.fake->mu);
  CHECK(f.fake->submits == 1);
}

TEST_CASE("after a restart the attempt's job is adopted, by its row or by its marker, never submitted again", "[slurm]") {
  Fixture f;
  // Detached at shutdown: the job goes on, nothing is cancelled.
  Ending first;
  f.ex->launch(f.req("a1"), {}, first.finish());
  f.ex->detach();
  CHECK(first.wait().detached);
  {
    std::lock_guard lock(f.fake->mu);
    CHECK(f.fake->cancelled.empty());
  }
  // A new executor (the restarted orchestrator) over the same store and Slurm.
  SlurmConfig cfg = f.ex->config();
  SlurmExecutor again(cfg, f.store, f.fake);
  again.start();
  Ending second;
  again.launch(f.req("a1"), {}, second.finish());
  // Died between sbatch and the store: only the SUBMITTING row and the job's marker exist.
  SlurmJobRecord half;
  half.task_id = "a2";
  half.marker = slurm::jobMarker("a2", 1);
  half.state = "SUBMITTING";
  {
    std::lock_guard lock(f.fake->mu);
    f.fake->jobs["555"] = JobState{.job_id = "555", .element = "555", .state = "RUNNING"};
    f.fake->markers[half.marker] = "555";
  }
  std::promise<Status> put;
  f.store.putSlurmJob(half, {}, [&put](Status s) { put.set_value(s); });
  REQUIRE(put.get_future().get().ok());
  Ending third;
  again.launch(f.req("a2"), {}, third.finish());
  CHECK(f.store.getSlurmJob("a2", 1).value()->job_id == "555");
  f.fake->set("100", "COMPLETED");
  f.fake->set("555", "COMPLETED");
  CHECK(second.wait().success);
  CHECK(third.wait().success);
  CHECK(again.stats().adopted == 2);
  again.stop();
  std::lock_guard lock(f.fake->mu);
  CHECK(f.fake->submits == 1);
}

TEST_CASE("payloads are checked at submission: template, required keys, option forms", "[slurm]") {
  Fixture f;
  CHECK(f.ex->validate({{"command", "echo hi"}}).ok());
  CHECK_FALSE(f.ex->validate({}).ok());
  CHECK_FALSE(f.ex->validate({{"command", "x"}, {"template", "../etc/passwd"}}).ok());
  auto missing = f.ex->validate({{"command", "x"}, {"template", "nosuch"}});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().find("command") != std::string::npos);  // names the templates there are
  CHECK_FALSE(f.ex->validate({{"command", "x"}, {"ntasks", "1;id"}}).ok());
  CHECK_FALSE(f.ex->validate({{"command", "x"}, {"partition", "a b"}}).ok());
}
