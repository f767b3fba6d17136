// SqliteTaskStore: the durable store (SQLite in WAL mode) of tasks and of workflows,
// their runs and steps (SqliteWorkflowStore.cc). One writer thread owns the write
// connection and commits every write that arrived while the previous commit ran in a
// single transaction (group commit); readers use a connection of their own. The schema
// is a list of versioned migrations; later parts (Slurm jobs, the event outbox) add
// theirs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <thread>

#include "orchestrator/events/EventLog.h"
#include "orchestrator/store/TaskStore.h"
#include "orchestrator/slurm/SlurmJobs.h"
#include "orchestrator/store/WriteQueue.h"
#include "orchestrator/workflows/WorkflowRecords.h"

struct sqlite3;
struct sqlite3_stmt;

namespace dspy::orchestrator {

// Takes the store directory's lock (<dir>/orchestrator.lock, flock): the file
// descriptor, or FailedPrecondition when another process holds it.
Result<int> lockStoreDir(const std::string& dir);

enum class SyncMode {
  Normal,  // survives a crash of the process (kill -9): WAL, synchronous=NORMAL
  Full,    // also survives power loss: fsync on every group commit
};

class SqliteTaskStore final : public TaskStore, public WorkflowStore, public EventLog, public SlurmJobStore {
 public:
  using Done = TaskStore::Done;
  // Opens (creating if needed) `dir`/orchestrator.db and brings the schema up to date.
  static Result<std::unique_ptr<SqliteTaskStore>> open(const std::string& dir, SyncMode mode, int max_batch = 1024);
  ~SqliteTaskStore() override;

  void insert(const TaskRecord& task, Done done) override;
  void insertMany(std::vector<TaskRecord> tasks, ManyDone done) override;
  void update(const TaskRecord& task, Done done) override;
  void flush() override;
  Result<std::optional<TaskRecord>> get(const std::string& id) override;
  Result<std::vector<TaskRecord>> unfinished() override;
  Result<std::vector<TaskRecord>> list(const TaskFilter& filter) override;
  Result<std::map<TaskStatus, std::int64_t>> countByStatus() override;
  Result<std::int64_t> maxSeq() override;
  std::function<Counts()> countByStatusLater() override;
  Result<std::vector<TaskRecord>> queued(const std::string& queue, std::optional<QueuePos> from, int limit) override;
  Result<std::vector<PendingGroup>> pendingGroups() override;
  Result<std::vector<TaskRecord>> withStatus(TaskStatus status) override;
  Status moveQueue(const std::string& cls, const std::string& from, const std::string& to) override;
  std::string health() override;

  // WorkflowStore
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

  // EventLog (SqliteEvents.cc)
  void setRelayed(bool relayed) override;
  void setCommitted(Committed fn) override;
  void appendEvents(std::vector<Event> events, Done done) override;
  Result<std::vector<Event>> readEvents(std::int64_t after_seq, int limit, bool pending_only) override;
  Result<std::int64_t> seqBefore(std::int64_t ts_ns) override;
  void markDelivered(std::vector<std::int64_t> seqs, Done done) override;
  void pruneEvents(std::int64_t before_ns, int max_rows, std::function<void(Result<std::int64_t>)> done) override;
  OutboxStats outboxStats() override;

  // SlurmJobStore (SqliteSlurmJobs.cc)
  void putSlurmJob(const SlurmJobRecord& job, std::vector<Event> events, Done done) override;
  Result<std::optional<SlurmJobRecord>> getSlurmJob(const std::string& task_id, int attempt) override;
  Result<std::optional<SlurmJobRecord>> latestSlurmJob(const std::string& task_id) override;

  static constexpr int kSchemaVersion = 6;
  const std::string& path() const { return path_; }

 private:
  SqliteTaskStore(std::string path, sqlite3* writer, sqlite3* reader, sqlite3* checkpointer, int max_batch);
  // One transaction for the whole batch (the WriteQueue's commit function).
  void commit(std::vector<WriteQueue::Write>& batch, std::vector<Status>& outcomes);
  Result<std::vector<TaskRecord>> query(const std::string& sql, const std::function<void(void*)>& bind);
  // A write of workflow records on the writer thread, inside the batch's transaction.
  void writeOp(std::function<Status(sqlite3*)> op, Done done, std::vector<Event> events = {});
  // Stamps and inserts a write's events (writer thread, inside the batch's transaction).
  Status storeEvents(std::vector<Event>& events);
  Status syncTaskSeqs();
  // A read on the reader connection.
  Status read(const std::function<Status(sqlite3*)>& fn);
  Result<std::optional<SlurmJobRecord>> readSlurmJob(const std::string& where,
                                                     const std::function<void(sqlite3_stmt*)>& bind);
  Result<std::vector<WorkflowRecord>> readWorkflows(const std::string& where, const std::string& id);
  Result<std::vector<RunRecord>> readRuns(const std::string& where, const std::function<void(void*)>& bind,
                                          bool with_steps);

  std::string path_;
  int lock_fd_ = -1;  // flock on <dir>/orchestrator.lock while the store is open
  sqlite3* writer_;
  sqlite3* reader_;
  sqlite3* checkpoint_db_;  // the checkpoint thread's connection
  std::mutex read_mu_;
  static constexpr int kCheckpointPages = 1000;  // SQLite's own auto-checkpoint size
  // Under a steady stream of commits a background checkpoint never finishes between two
  // of them, and the WAL can only start over once one has: past this size the writer
  // checkpoints itself, between commits, so the WAL stays bounded (about 12 MB).
  static constexpr int kInlineCheckpointPages = 3000;
  std::atomic<int> wal_pages_{0};
  std::condition_variable_any checkpoint_cv_;
  std::jthread checkpointer_;
  std::mutex error_mu_;
  std::string last_error_;
  struct Statements;
  std::unique_ptr<Statements> statements_;  // the writer's prepared statements
  std::unique_ptr<EventStamper> stamper_;    // writer thread only
  std::atomic<bool> relayed_{false};
  std::atomic<std::int64_t> pending_{0};     // events waiting for the relay
  std::atomic<std::int64_t> last_seq_{0};
  std::int64_t uncommitted_pending_ = 0;     // writer thread only
  // A task's events (task_*) are numbered from its row's event_seq, not from an index
  // of the outbox; while a transaction is open: task id -> its last task event's number
  // where the row does not hold it yet (writer thread only).
  std::unordered_map<std::string, std::int64_t> unsynced_task_seqs_;
  std::unique_ptr<WriteQueue> writes_;       // last: its thread uses the rest
};

}  // namespace dspy::orchestrator
