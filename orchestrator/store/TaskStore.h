// TaskStore: where accepted tasks live. Writes are asynchronous: `done` runs once the
// write is durable (committed), on the store's own thread, in submission order. The
// engine answers a client only from `done`.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/Result.h"
#include "orchestrator/tasks/Task.h"

namespace dspy::orchestrator {

struct TaskFilter {
  std::optional<TaskStatus> status;
  std::string cls;
  std::string workflow_id;
  std::int64_t after_seq = 0;  // paging: tasks with a larger seq
  int limit = 100;
};

class TaskStore {
 public:
  using Done = std::function<void(Status)>;
  virtual ~TaskStore() = default;

  // Fails with AlreadyExists when the id is taken.
  virtual void insert(const TaskRecord& task, Done done) = 0;
  // Inserts every task in one write (one transaction, never split): `done` runs once,
  // with one outcome per task in their order (AlreadyExists for a taken id).
  using ManyDone = std::function<void(std::vector<Status>)>;
  virtual void insertMany(std::vector<TaskRecord> tasks, ManyDone done) = 0;
  // Writes the mutable part (status, attempts, result, error, times).
  virtual void update(const TaskRecord& task, Done done) = 0;
  // Blocks until every write handed in so far is durable.
  virtual void flush() = 0;

  virtual Result<std::optional<TaskRecord>> get(const std::string& id) = 0;
  // Tasks not in a terminal state, in seq order (recovery after a restart).
  virtual Result<std::vector<TaskRecord>> unfinished() = 0;
  virtual Result<std::vector<TaskRecord>> list(const TaskFilter& filter) = 0;
  // Counts by status, and the largest seq ever used.
  virtual Result<std::map<TaskStatus, std::int64_t>> countByStatus() = 0;
  virtual Result<std::int64_t> maxSeq() = 0;
  // countByStatus as of this call, counted when the returned function runs (maybe later,
  // on another thread): a restart need not wait for a count over its whole history.
  using Counts = Result<std::map<TaskStatus, std::int64_t>>;
  virtual std::function<Counts()> countByStatusLater() {
    auto counts = countByStatus();
    return [counts] { return counts; };
  }

  // The backlog as the store keeps it: pending tasks of queue `queue` in dispatch order
  // (priority descending, then seq), starting at `from` (inclusive; none: the first),
  // at most `limit`, whole records (payloads too).
  struct QueuePos {
    int priority = 0;
    std::int64_t seq = 0;
  };
  virtual Result<std::vector<TaskRecord>> queued(const std::string& queue, std::optional<QueuePos> from,
                                                 int limit) = 0;
  // Pending tasks counted per (class, queue).
  struct PendingGroup {
    std::string cls;
    std::string queue;
    std::int64_t count = 0;
  };
  virtual Result<std::vector<PendingGroup>> pendingGroups() = 0;
  // Tasks in one status, in seq order (recovery reads the running ones).
  virtual Result<std::vector<TaskRecord>> withStatus(TaskStatus status) = 0;
  // Pending tasks of class `cls` waiting in queue `from` move to queue `to` (a restart
  // changed where that class runs); blocks until durable.
  virtual Status moveQueue(const std::string& cls, const std::string& from, const std::string& to) = 0;
  // "ok" or why not.
  virtual std::string health() = 0;
};

// Used by both stores: does `t` pass `f` (ignoring paging)?
bool matches(const TaskRecord& t, const TaskFilter& f);

}  // namespace dspy::orchestrator
