// MemoryTaskStore: the TaskStore without a disk, for tests and the benchmarks' baseline.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "orchestrator/store/TaskStore.h"
#include "orchestrator/store/WriteQueue.h"

namespace dspy::orchestrator {

// Keeps everything in memory. Writes go through the same WriteQueue as the SQLite
// store's (batches, `done` on the queue's thread in submission order), so the engine
// behaves the same on both. For tests and for the benchmarks' in-memory baseline.
class MemoryTaskStore final : public TaskStore {
 public:
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

 private:
  void commit(const std::vector<WriteQueue::Write>& batch, std::vector<Status>& outcomes);

  std::mutex mu_;
  std::map<std::string, TaskRecord> tasks_;
  WriteQueue writes_;  // last: its thread commits into tasks_
};

}  // namespace dspy::orchestrator
