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
  // "ok" or why not.
  virtual std::string health() = 0;
};

// Used by both stores: does `t` pass `f` (ignoring paging)?
bool matches(const TaskRecord& t, const TaskFilter& f);

}  // namespace dspy::orchestrator
