// TaskEngine: accepts tasks, makes them durable, queues them per class (higher
// priority first, strict FIFO within a priority), runs them through the class's
// executor under the class's concurrency limiter, retries failures by policy, cancels,
// recovers after a restart, and tells watchers about every change.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_map>

#include "common/Clock.h"
#include "orchestrator/executors/Executor.h"
#include "orchestrator/scheduler/EngineObserver.h"
#include "orchestrator/scheduler/Limiter.h"
#include "orchestrator/scheduler/RecentWindow.h"
#include "orchestrator/scheduler/TaskWatch.h"
#include "common/WorkerPool.h"
#include "orchestrator/store/TaskStore.h"

namespace dspy::orchestrator {

struct ClassConfig {
  std::string executor = "process";  // process | container | http | slurm | noop
  LimiterConfig limiter;
  std::chrono::milliseconds timeout{60'000};  // per attempt; a payload may ask for less
  RetryPolicy retry;
  std::string workload_class;  // env-manager class for `container` (default: the class name)
  int max_queued = 100'000;    // submissions beyond this are refused (back-pressure)
};

struct EngineConfig {
  std::map<std::string, ClassConfig> classes;
  std::int64_t max_payload_bytes = 256 * 1024;
  std::int64_t retain_finished = 10'000;  // finished tasks kept in memory (older: store)
  // Queued tasks per class kept in memory, whole (payload too), ready to dispatch; the
  // rest of the backlog waits in the store and is read back in dispatch order, half this
  // many at a time, as the queue in memory empties.
  int queue_in_memory = 2'000;
  // A task whose class is not configured runs under this class (its queue, limiter and
  // executor; the task keeps its own class name). Empty: such tasks are refused.
  std::string default_class;
};

// The most tasks one batch (SubmitTasks, POST /queue/submit with an array) may hold.
inline constexpr int kMaxBatch = 10'000;

struct SubmitRequest {
  std::string id;  // empty = generate
  std::string cls;
  Payload payload;
  int priority = 0;
  std::string workflow_id;
  std::optional<RetryPolicy> retry;  // overrides the class's policy (a workflow step's)
};

struct ClassStats {
  std::string executor;
  std::string limiter;
  int limit = 0;
  int inflight = 0;
  int queued = 0;  // waiting to run, including retries waiting for their delay
  std::int64_t queued_in_store = 0;  // of those, waiting only in the store (beyond queue_in_memory)
  double min_latency_ms = 0;
  // Over the last minute: attempts started and their summed queue wait; attempts that
  // ended, and how many of those failed.
  std::int64_t recent_starts = 0;
  double recent_wait_seconds_sum = 0;
  std::int64_t recent_attempts = 0;
  std::int64_t recent_failures = 0;
};

struct QueueStats {
  std::int64_t pending = 0;  // not finished: queued, waiting to retry or running
  std::int64_t done = 0;     // finished: completed, failed or cancelled
  std::int64_t submitted = 0;
  std::int64_t processed = 0;  // attempts that ended (a retried task counts each)
  std::int64_t completed = 0;
  std::int64_t failed = 0;
  std::int64_t cancelled = 0;
  std::map<std::string, ClassStats> classes;
};

class TaskEngine {
 public:
  using Executors = std::map<std::string, std::shared_ptr<Executor>>;  // by class
  using SubmitDone = std::function<void(Result<std::string>)>;

  // All time goes through `clock` (retry delays, queue waits, latencies); `observer`
  // (may be null) hears of every accepted, started, retried and finished task.
  TaskEngine(EngineConfig cfg, TaskStore& store, Executors executors, Clock& clock, EngineObserver* observer = nullptr);
  ~TaskEngine();

  // Reads unfinished tasks from the store: queued ones are queued again; ones that
  // were running when the process died count as a failed attempt and are retried or
  // failed by their class's policy, except under a resumable executor (Slurm), whose
  // attempt is launched again and adopted. Call once, before start().
  Status recover();
  void start();
  // Stops dispatching, cancels running attempts (they go back to the queue without
  // using up an attempt; a resumable executor's attempts are detached and stay
  // "running" in the store) and waits until the store has everything.
  void stop();

  // Validates and stores a task; `done` runs once it is durable (or refused), on
  // whichever thread finished the write. An exact resubmission of an existing id
  // succeeds again; a different request with a taken id is AlreadyExists.
  void submit(SubmitRequest req, SubmitDone done);
  // Submits each request as submit() does; the writes share the store's group commits.
  // `done` runs once, after every request is durable or refused, with one result per
  // request in their order.
  using BatchDone = std::function<void(std::vector<Result<std::string>>)>;
  void submitBatch(std::vector<SubmitRequest> reqs, BatchDone done);
  Result<TaskRecord> get(const std::string& id);
  // A queued task is cancelled at once; a running one is killed and then recorded as
  // cancelled. A finished task cannot be cancelled (FailedPrecondition).
  Status cancel(const std::string& id);
  Result<std::vector<TaskRecord>> list(const TaskFilter& filter);

  // Subscribes first, then returns the current state of the matching tasks, so that a
  // caller misses nothing (it may see a state twice, and should skip repeats).
  std::shared_ptr<TaskWatch> watch(const std::set<std::string>& ids, bool include_finished,
                                   std::vector<TaskRecord>* snapshot);
  void unwatch(const std::shared_ptr<TaskWatch>& w);

  // Applies a reloaded config to the classes that exist: limiter (a changed one starts
  // afresh), timeout, retry policy, max_queued, workload class; and the payload and
  // retention limits. Adding or removing a class or changing its executor needs a
  // restart: those are returned as notes and left as they run.
  std::vector<std::string> reconfigure(const EngineConfig& next);

  QueueStats stats();
  // Hears every durable task change (after the watchers), on the store's thread: it must
  // be quick and must not wait for the store. Set it before start().
  void setListener(std::function<void(const TaskRecord&)> listener) { listener_ = std::move(listener); }
  bool hasClass(const std::string& cls) const { return cfg_.classes.count(cls) > 0; }
  // The executor kind tasks of class `cls` run on ("" when the class is refused).
  std::string executorOf(const std::string& cls);
  std::string storeHealth() { return store_.health(); }

 private:
  struct Entry {
    TaskRecord rec;
    bool accepted = false;  // durable in the store
    std::vector<SubmitDone> waiters;  // exact resubmissions while the first write is in flight
    std::stop_source cancel{std::nostopstate};  // a fresh one per attempt
    bool cancel_requested = false;
    bool interrupted = false;  // stopped by our own shutdown
    // A resumable executor's attempt that outlived the last process: launched again as
    // the same attempt (its executor adopts the work), keeping its start time.
    bool resuming = false;
    // Durable as it is (just inserted, or read from the store), so it may leave memory
    // while it waits in the queue. Any write in flight clears it.
    bool spillable = false;
    // Admitted into a free slot of its class, running from its insert on (the insert
    // writes "running, attempt 1"): the attempt starts once that insert is durable.
    bool launch_on_insert = false;
    Clock::MonotonicTime queued_at{};
    Clock::MonotonicTime started_at{};
  };
  struct QueueKey {
    int neg_priority;
    std::int64_t seq;
    bool operator<(const QueueKey& o) const {
      return neg_priority != o.neg_priority ? neg_priority < o.neg_priority : seq < o.seq;
    }
  };
  struct ClassState {
    std::string name;
    ClassConfig cfg;
    std::shared_ptr<Executor> executor;
    std::unique_ptr<ConcurrencyLimiter> limiter;
    std::map<QueueKey, std::string> queue;  // the head of the backlog, in memory
    // The rest of the backlog: pending tasks that wait only in the store. Each has a key
    // at or after `spill_from` (none: anywhere); tasks in memory are never counted here.
    std::int64_t spilled = 0;
    std::optional<QueueKey> spill_from;
    int inflight = 0;   // slots taken, including by tasks admitted into a slot (insert in flight)
    int admitting = 0;  // admitted without a slot, insert in flight: later ones queue behind them
    int waiting_retry = 0;
    RecentWindow recent_waits;     // seconds from queued to started, per start
    RecentWindow recent_outcomes;  // 1 per failed attempt, 0 per successful one
  };

  // The configured class whose queue and executor run tasks of class `cls` (itself, or
  // the default class for an unconfigured name); "" when none does.
  const std::string& runsUnder(const std::string& cls) const;
  Status validateRequest(SubmitRequest& req, Payload* expanded) const;
  // Checks a validated request against what is in memory (an exact resubmission, a
  // taken id, a full queue: answered here through `done`) and otherwise makes its entry
  // and fills `rec` for the store: true when `rec` must be inserted.
  bool admitLocked(SubmitRequest& req, const std::string& hash, SubmitDone done, TaskRecord* rec);
  void onInserted(const std::string& id, Status s);
  void onInsertedMany(const std::vector<std::string>& ids, std::vector<Status> outcomes);
  void enqueueLocked(Entry& e);
  // Leaves the task to the store: it waits there until a refill reads it back.
  void spillLocked(ClassState& cs, const std::string& id, const QueueKey& key);
  // Reads the next tasks of the class's backlog from the store into its queue: true
  // when the queue is no longer empty.
  bool refillLocked(ClassState& cs);
  static std::int64_t queuedCount(const ClassState& cs) {
    return static_cast<std::int64_t>(cs.queue.size()) + cs.waiting_retry + cs.spilled;
  }
  void dispatchLocked(ClassState& cs);
  // Marks `e` running its next attempt in a slot of `cs` (the caller saw one free).
  void beginAttemptLocked(ClassState& cs, Entry& e);
  // Counts the attempt begun as started and makes its request; the caller then runs it
  // on the pool (runAttempt) once "running" is durable.
  ExecRequest launchLocked(ClassState& cs, Entry& e);
  // An entry whose insert is in flight leaves admission: its slot (or its place among
  // the admitted without one) is given back.
  void endAdmissionLocked(Entry& e);
  void runAttempt(std::string id, ExecRequest req, std::shared_ptr<Executor> ex, std::stop_token cancel);
  void finishAttempt(const std::string& id, ExecOutcome outcome, std::chrono::nanoseconds latency,
                     Clock::MonotonicTime started);
  // Writes the entry's record; watchers hear of it once it is durable, then `then` runs.
  void persistLocked(Entry& e, std::function<void()> then = {});
  void notify(const TaskRecord& rec);
  void retireLocked(const std::string& id);
  void timerLoop(std::stop_token stop);
  // Wall-clock milliseconds from the engine's clock (what records store).
  std::int64_t nowMs() const;

  EngineConfig cfg_;
  TaskStore& store_;
  Clock& clock_;
  EngineObserver& observer_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> tasks_;
  std::map<std::string, ClassState> classes_;
  std::multimap<Clock::MonotonicTime, std::string> retry_at_;  // when -> task id
  std::uint64_t retry_changes_ = 0;  // wakes the timer when an earlier retry arrives
  std::deque<std::string> finished_order_;
  std::int64_t seq_ = 0;
  QueueStats totals_;
  bool started_ = false;
  bool stopping_ = false;
  int running_threads_ = 0;
  std::condition_variable threads_cv_;
  std::condition_variable_any timer_cv_;
  std::jthread timer_;
  std::jthread counter_;  // after a restart: counts finished tasks (stats) in the background

  WorkerPool pool_;

  std::function<void(const TaskRecord&)> listener_;
  // The policy a task retries by: its own, else its class's.
  static const RetryPolicy& policyOf(const Entry& e, const ClassState& cs) { return e.rec.retry ? *e.rec.retry : cs.cfg.retry; }

  std::mutex watch_mu_;
  std::list<std::shared_ptr<TaskWatch>> watches_;
};

}  // namespace dspy::orchestrator
