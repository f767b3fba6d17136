// MemoryTaskStore: the TaskStore without a disk, for tests and the benchmarks' baseline.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "orchestrator/store/TaskStore.h"

namespace dspy::orchestrator {

// Keeps everything in memory. Like the SQLite store, `done` runs on the store's own
// thread in submission order, so the engine behaves the same on both. For tests and
// for the benchmarks' in-memory baseline.
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
  void later(std::function<void()> fn);

  std::mutex mu_;
  std::map<std::string, TaskRecord> tasks_;
  std::mutex q_mu_;
  std::condition_variable_any q_cv_;
  std::condition_variable idle_cv_;
  std::deque<std::function<void()>> queue_;
  bool busy_ = false;
  std::jthread thread_;
};

}  // namespace dspy::orchestrator
