// WorkflowEngine: durable parallel runs of workflow DAGs on top of the task engine.
// Event-driven: a step becomes ready the moment its last dependency succeeded (the task
// engine tells of every durable task change), and ready steps run at once, side by side,
// under their task classes' limiters. Every step change is durable before its effect
// starts (a step is recorded "running" before its task is submitted); a restart picks
// every unfinished run up where it was: a running step's task is found again by its id
// (run id + "." + node id) and a finished step never runs again.
//
// What a node does: `task` and `custom` run a task of their class; `signature` and
// `verifier` run a task whose class comes from execution_domain (gpu, cuda, accelerated
// -> gpu_slurm, cpu_long -> cpu_long, else cpu_short) with the node's config as payload;
// `reward` and `deployment` emit their event and succeed; `services` asks env-manager for
// the named services; `training` runs a gpu_slurm task (a Slurm job from the template
// named by `template`, else `slurm_profile`, else "rl") with its config as payload. Events (workflow_started, workflow_step_*, workflow_reward, ...)
// are stored with the step or run write that causes them (the outbox). Payload values may refer to a run input, "${input.KEY}", or to a
// result key of an upstream step, "${steps.NODE.KEY}", resolved when the step is ready.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "common/Clock.h"
#include "common/WorkerPool.h"
#include "orchestrator/scheduler/TaskEngine.h"
#include "orchestrator/workflows/WorkflowRecords.h"
#include "orchestrator/workflows/WorkflowSpec.h"

namespace dspy::orchestrator {

struct WorkflowConfig {
  SpecLimits limits;
  int max_live_runs = 10'000;  // runs not finished; more starts are refused (back-pressure)
};

// Asks env-manager to bring services up; Ok once they are.
using ServicesStarter = std::function<Status(const std::vector<std::string>& services, std::stop_token stop)>;

// One subscriber's queue of run changes (a StreamWorkflowStatus call's).
class RunWatch {
 public:
  std::deque<RunRecord> next(std::stop_token stop);
  void push(const RunRecord& r);

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<RunRecord> changes_;
};

class WorkflowEngine {
 public:
  using RunDone = std::function<void(Result<RunRecord>)>;

  WorkflowEngine(WorkflowConfig cfg, WorkflowStore& store, TaskEngine& tasks, Clock& clock,
                 ServicesStarter services);
  ~WorkflowEngine();

  // Picks up unfinished runs. Call after the task engine recovered and started.
  Status recover();
  // Stops starting steps; running tasks stay with the task engine.
  void stop();

  enum class PutMode {
    Create,   // AlreadyExists when the id is taken
    Replace,  // a new version of an existing workflow; NotFound otherwise
    Upsert,   // either
  };
  // Stores a workflow (no id in the spec or the call: one is generated) or a new version
  // of one; the previous versions stay. Waits until durable.
  Result<WorkflowRecord> putWorkflow(const std::string& spec_text, const std::string& id, PutMode mode);
  // The spec of a stored version (cached), for showing runs.
  std::shared_ptr<const WorkflowSpec> specOf(const std::string& workflow_id, int version);
  Result<WorkflowRecord> getWorkflow(const std::string& id);
  Result<std::vector<WorkflowRecord>> listWorkflows();
  Result<std::vector<WorkflowRecord>> history(const std::string& id);

  // Starts a run of the workflow's current version; the same non-empty idempotency key
  // returns the existing run. `done` runs once the run is durable.
  void startRun(const std::string& workflow_id, const std::string& idempotency_key, const Payload& input,
                RunDone done);
  Status cancelRun(const std::string& run_id);
  Result<RunRecord> getRun(const std::string& run_id);
  Result<std::vector<RunRecord>> listRuns(const std::string& workflow_id, int limit);

  // Subscribes to a run's changes; `snapshot` gets its state now.
  std::shared_ptr<RunWatch> watch(const std::string& run_id, RunRecord* snapshot, Status* status);
  void unwatch(const std::shared_ptr<RunWatch>& w);

  // The task engine's listener: a durable change of any task.
  void onTask(const TaskRecord& t);
  int liveRuns() const;

 private:
  struct Live;
  struct Action;  // work decided under the lock, done outside it
  using Actions = std::vector<std::function<void()>>;

  std::int64_t nowMs() const;
  void readyLocked(Live& run, const std::string& node, Actions& out);
  void startStep(const std::string& run_id, const std::string& node, Actions& out);
  void finishStepLocked(Live& run, const std::string& node, StepStatus status, const Payload& result,
                        const std::string& error, int attempts, Actions& out);
  void settleLocked(Live& run, Actions& out);
  void persistStepLocked(Live& run, std::size_t index, std::function<void()> then, Actions& out);
  void publishLocked(const Live& run, Actions& out);
  // Adds an event to the run's next write (the outbox takes it in that transaction).
  void emitLocked(Live& run, const std::string& type, Payload data);
  // Writes the run's events that no state write took.
  void flushEventsLocked(Live& run, Actions& out);
  void perform(Actions& actions);

  WorkflowConfig cfg_;
  WorkflowStore& store_;
  TaskEngine& tasks_;
  Clock& clock_;
  ServicesStarter services_;

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Live>> live_;                        // run id -> run
  // Runs that ended during the current critical section: kept alive until it is over,
  // since the code that ended one (a step finishing inside a loop over the run's steps)
  // still holds references into it. Emptied by perform().
  std::vector<std::unique_ptr<Live>> ended_;
  std::map<std::string, RunRecord> ending_;  // ended runs whose final record is not durable yet
  std::map<std::string, std::pair<std::string, std::string>> task_steps_;  // task id -> run, node
  std::map<std::string, std::list<std::shared_ptr<RunWatch>>> watches_;      // run id -> watchers
  std::map<std::pair<std::string, int>, std::shared_ptr<const WorkflowSpec>> specs_;  // (id, version)
  bool stopping_ = false;
  std::stop_source stop_;
  WorkerPool blocking_{WorkerPool::Limits{.max_threads = 16, .max_queued = 100'000}};  // services steps
};

}  // namespace dspy::orchestrator
