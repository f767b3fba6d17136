// TaskWatch: one subscriber's queue of task changes (a result stream's); the engine
// pushes every durable change the subscriber wants.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>

#include "orchestrator/tasks/Task.h"

namespace dspy::orchestrator {

// A subscription to task changes; the engine pushes, a stream pops.
class TaskWatch {
 public:
  explicit TaskWatch(std::set<std::string> ids) : ids_(std::move(ids)) {}
  // Waits for changes until `stop`; returns what arrived (empty when stopped).
  std::deque<TaskRecord> next(std::stop_token stop);
  // The same, but returns (maybe empty) once `deadline` passes.
  std::deque<TaskRecord> next(std::stop_token stop, std::chrono::steady_clock::time_point deadline);
  bool wants(const std::string& id) const { return ids_.empty() || ids_.count(id); }
  void push(const TaskRecord& t);

 private:
  std::set<std::string> ids_;
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<TaskRecord> changes_;
};

}  // namespace dspy::orchestrator
