// MemoryTaskStore: the TaskStore without a disk, for tests and the benchmarks' baseline.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "orchestrator/store/TaskStore.h"
#include "orchestrator/store/WriteQueue.h"
#include "orchestrator/workflows/WorkflowRecords.h"

namespace dspy::orchestrator {

// Keeps everything in memory. Writes go through the same WriteQueue as the SQLite
// store's (batches, `done` on the queue's thread in submission order), so the engine
// behaves the same on both. For tests and for the benchmarks' in-memory baseline.
class MemoryTaskStore final : public TaskStore, public WorkflowStore {
 public:
  using Done = TaskStore::Done;
  MemoryTaskStore();
  ~MemoryTaskStore() override;
  void insert(const TaskRecord& task, Done done) override;
  void update(const TaskRecord& task, Done done) override;
  void flush() override;
  Result<std::optional<TaskRecord>> get(const std::string& id) override;
  Result<std::vector<TaskRecord>> unfinished() override;
  Result<std::vector<TaskRecord>> list(const TaskFilter& filter) override;
  Result<std::map<TaskStatus, std::int64_t>> countByStatus() override;
  Result<std::int64_t> maxSeq() override;
  std::string health() override { return "ok"; }

  // WorkflowStore (MemoryWorkflowStore.cc)
  void putWorkflow(const WorkflowRecord& w, Done done) override;
  Result<std::optional<WorkflowRecord>> getWorkflow(const std::string& id) override;
  Result<std::vector<WorkflowRecord>> listWorkflows() override;
  Result<std::vector<WorkflowRecord>> workflowHistory(const std::string& id) override;
  void insertRun(const RunRecord& run, Done done) override;
  void updateRun(const RunRecord& run, Done done) override;
  void putStep(const StepRecord& step, Done done) override;
  Result<std::optional<RunRecord>> getRun(const std::string& id) override;
  Result<std::optional<std::string>> runByIdempotencyKey(const std::string& workflow_id, const std::string& key) override;
  Result<std::vector<RunRecord>> listRuns(const std::string& workflow_id, int limit) override;
  Result<std::vector<RunRecord>> unfinishedRuns() override;

 private:
  void commit(const std::vector<WriteQueue::Write>& batch, std::vector<Status>& outcomes);
  // A workflow write: `op` runs in a batch, holding mu_.
  void writeOp(std::function<Status()> op, Done done);
  RunRecord withSteps(RunRecord r) const;  // holding mu_

  std::mutex mu_;
  std::map<std::string, TaskRecord> tasks_;
  std::map<std::string, std::vector<WorkflowRecord>> workflows_;  // id -> versions, oldest first
  std::map<std::string, RunRecord> runs_;
  std::vector<std::string> run_order_;
  std::map<std::pair<std::string, std::string>, StepRecord> steps_;  // (run, node) -> step
  WriteQueue writes_;  // last: its thread commits into tasks_
};

}  // namespace dspy::orchestrator
