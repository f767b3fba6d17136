// What the orchestrator keeps of workflows and their runs, and the store interface the
// workflow engine writes through. The SQLite and the in-memory task stores implement it
// on the same write queue as tasks, so a step's change and the task it starts commit in
// the order they were made.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/Payload.h"
#include "common/Result.h"
#include "orchestrator/events/Event.h"

namespace dspy::orchestrator {

// A stored version of a workflow.
struct WorkflowRecord {
  std::string id;
  std::string name;
  int version = 1;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  nlohmann::json document;  // the spec as given, with id, version and times filled in
};

enum class RunStatus { Pending, Running, Succeeded, Failed, Cancelled };
// Steps use the run record's words; a step that a cancel or a stop policy interrupted
// ends "failed" with that reason, one that never started ends "skipped".
enum class StepStatus { Pending, Running, Succeeded, Failed, Skipped };
const char* toString(RunStatus s);
const char* toString(StepStatus s);
std::optional<RunStatus> parseRunStatus(const std::string& s);
std::optional<StepStatus> parseStepStatus(const std::string& s);
inline bool isTerminal(RunStatus s) { return s != RunStatus::Pending && s != RunStatus::Running; }
inline bool isTerminal(StepStatus s) { return s != StepStatus::Pending && s != StepStatus::Running; }

struct StepRecord {
  std::string run_id;
  std::string node_id;
  StepStatus status = StepStatus::Pending;
  int attempts = 0;
  std::string task_id;  // the task that runs it, when it is one
  std::int64_t started_ms = 0;
  std::int64_t finished_ms = 0;
  Payload result;
  std::string error;
};

struct RunRecord {
  std::string id;
  std::string workflow_id;
  int workflow_version = 0;
  std::string idempotency_key;
  RunStatus status = RunStatus::Pending;
  Payload input;
  std::string error;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  std::int64_t finished_ms = 0;
  std::vector<StepRecord> steps;  // filled by reads that ask for them
  std::string current_step;       // the step that changed last (live runs only, not stored)
};

class WorkflowStore {
 public:
  using Done = std::function<void(Status)>;
  virtual ~WorkflowStore() = default;

  // Writes a new version of a workflow (the record's version), keeping the older ones.
  virtual void putWorkflow(const WorkflowRecord& w, Done done) = 0;
  virtual Result<std::optional<WorkflowRecord>> getWorkflow(const std::string& id) = 0;
  virtual Result<std::vector<WorkflowRecord>> listWorkflows() = 0;
  // Every version, newest first.
  virtual Result<std::vector<WorkflowRecord>> workflowHistory(const std::string& id) = 0;

  // Inserts a run with its steps; AlreadyExists when (workflow_id, idempotency_key) is
  // taken by another run (a non-empty key).
  // `events` are stored with the write, in its transaction (the outbox).
  virtual void insertRun(const RunRecord& run, std::vector<Event> events, Done done) = 0;
  // The run's own fields (status, error, times); steps go through putStep.
  virtual void updateRun(const RunRecord& run, std::vector<Event> events, Done done) = 0;
  virtual void putStep(const StepRecord& step, std::vector<Event> events, Done done) = 0;
  virtual Result<std::optional<RunRecord>> getRun(const std::string& id) = 0;  // with steps
  virtual Result<std::optional<std::string>> runByIdempotencyKey(const std::string& workflow_id,
                                                                   const std::string& key) = 0;
  // Newest first, without steps.
  virtual Result<std::vector<RunRecord>> listRuns(const std::string& workflow_id, int limit) = 0;
  // Runs not finished, with steps (recovery).
  virtual Result<std::vector<RunRecord>> unfinishedRuns() = 0;
  // Events without a write of their own (the outbox).
  virtual void appendEvents(std::vector<Event> events, Done done) = 0;
};

}  // namespace dspy::orchestrator
