// Task change subscriptions.
#include "orchestrator/scheduler/TaskWatch.h"

namespace dspy::orchestrator {

std::deque<TaskRecord> TaskWatch::next(std::stop_token stop) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, stop, [this] { return !changes_.empty(); });
  std::deque<TaskRecord> out;
  out.swap(changes_);
  return out;
}

std::deque<TaskRecord> TaskWatch::next(std::stop_token stop, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, stop, deadline, [this] { return !changes_.empty(); });
  std::deque<TaskRecord> out;
  out.swap(changes_);
  return out;
}

void TaskWatch::push(const TaskRecord& t) {
  {
    std::lock_guard lock(mu_);
    changes_.push_back(t);
  }
  cv_.notify_one();
}

}  // namespace dspy::orchestrator
