// MemoryTaskStore: the TaskStore without a disk, for tests and the benchmarks' baseline.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "orchestrator/events/EventLog.h"
#include "orchestrator/store/TaskStore.h"
#include "orchestrator/slurm/SlurmJobs.h"
#include "orchestrator/store/WriteQueue.h"
#include "orchestrator/workflows/WorkflowRecords.h"

namespace dspy::orchestrator {

// Keeps everything in memory. Writes go through the same WriteQueue as the SQLite
// store's (batches, `done` on the queue's thread in submission order), so the engine
// behaves the same on both. For tests and for the benchmarks' in-memory baseline.
class MemoryTaskStore final : public TaskStore, public WorkflowStore, public EventLog, public SlurmJobStore {
 public:
  using Done = TaskStore::Done;
  MemoryTaskStore();
  ~MemoryTaskStore() override;
  void insert(const TaskRecord& task, Done done) override;
  void insertMany(std::vector<TaskRecord> tasks, ManyDone done) override;
  void update(const TaskRecord& task, Done done) override;
  void flush() override;
  Result<std::optional<TaskRecord>> get(const std::string& id) override;
  Result<std::vector<TaskRecord>> unfinished() override;
  Result<std::vector<TaskRecord>> list(const TaskFilter& filter) override;
  Result<std::map<TaskStatus, std::int64_t>> countByStatus() override;
  Result<std::int64_t> maxSeq() override;
  Result<std::vector<TaskRecord>> queued(const std::string& queue, std::optional<QueuePos> from, int limit) override;
  Result<std::vector<PendingGroup>> pendingGroups() override;
  Result<std::vector<TaskRecord>> withStatus(TaskStatus status) override;
  Status moveQueue(const std::string& cls, const std::string& from, const std::string& to) override;
  std::string health() override { return "ok"; }

  // WorkflowStore (MemoryWorkflowStore.cc)
  void putWorkflow(const WorkflowRecord& w, Done done) override;
  Result<std::optional<WorkflowRecord>> getWorkflow(const std::string& id) override;
  Result<std::vector<WorkflowRecord>> listWorkflows() override;
  Result<std::vector<WorkflowRecord>> workflowHistory(const std::string& id) override;
  void insertRun(const RunRecord& run, std::vector<Event> events, Done done) override;
  void updateRun(const RunRecord& run, std::vector<Event> events, Done done) override;
  void putStep(const StepRecord& step, std::vector<Event> events, Done done) override;
  Result<std::optional<RunRecord>> getRun(const std::string& id) override;
  Result<std::optional<std::string>> runByIdempotencyKey(const std::string& workflow_id, const std::string& key) override;
  Result<std::vector<RunRecord>> listRuns(const std::string& workflow_id, int limit) override;
  Result<std::vector<RunRecord>> unfinishedRuns() override;

  // EventLog (MemoryEvents.cc)
  void setRelayed(bool relayed) override;
  void setCommitted(Committed fn) override;
  void appendEvents(std::vector<Event> events, Done done) override;
  Result<std::vector<Event>> readEvents(std::int64_t after_seq, int limit, bool pending_only) override;
  Result<std::int64_t> seqBefore(std::int64_t ts_ns) override;
  void markDelivered(std::vector<std::int64_t> seqs, Done done) override;
  void pruneEvents(std::int64_t before_ns, int max_rows, std::function<void(Result<std::int64_t>)> done) override;
  OutboxStats outboxStats() override;

  // SlurmJobStore
  void putSlurmJob(const SlurmJobRecord& job, std::vector<Event> events, Done done) override;
  Result<std::optional<SlurmJobRecord>> getSlurmJob(const std::string& task_id, int attempt) override;
  Result<std::optional<SlurmJobRecord>> latestSlurmJob(const std::string& task_id) override;

 private:
  void commit(std::vector<WriteQueue::Write>& batch, std::vector<Status>& outcomes);
  void commitTaskLocked(const WriteQueue::Write& w, Status& outcome);
  void storeEventsLocked(std::vector<Event>& events);  // stamps them too
  // A workflow write: `op` runs in a batch, holding mu_.
  void writeOp(std::function<Status()> op, Done done, std::vector<Event> events = {});
  RunRecord withSteps(RunRecord r) const;  // holding mu_

  std::mutex mu_;
  std::map<std::string, TaskRecord> tasks_;
  std::map<std::string, std::vector<WorkflowRecord>> workflows_;  // id -> versions, oldest first
  std::map<std::string, RunRecord> runs_;
  std::vector<std::string> run_order_;
  std::map<std::pair<std::string, std::string>, StepRecord> steps_;  // (run, node) -> step
  // The outbox: events in seq order, each with 0 (pending), -1 (not relayed) or the
  // unix ms of its delivery.
  struct StoredEvent {
    Event event;
    std::int64_t delivered_ms = 0;
  };
  std::deque<StoredEvent> events_;
  std::map<std::pair<std::string, int>, SlurmJobRecord> slurm_jobs_;
  std::map<std::string, std::int64_t> resource_seqs_;
  bool relayed_ = false;
  std::int64_t pending_ = 0;
  EventStamper stamper_{0, 0, [this](const std::string& r) {
                          auto it = resource_seqs_.find(r);
                          return it == resource_seqs_.end() ? std::int64_t{0} : it->second;
                        }};
  WriteQueue writes_;  // last: its thread commits into tasks_
};

}  // namespace dspy::orchestrator
