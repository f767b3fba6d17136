// WorkerPool: threads that run task attempts. An attempt blocks its thread (a process,
// a container call, an HTTP request), so the pool grows to as many threads as attempts
// run at once (bounded by the classes' limits) and keeps idle threads for a while
// instead of creating one per attempt.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace dspy::orchestrator {

class WorkerPool {
 public:
  explicit WorkerPool(std::chrono::seconds idle_exit = std::chrono::seconds(30)) : idle_exit_(idle_exit) {}
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void run(std::function<void()> job);
  int threads() const;

 private:
  void loop();

  std::chrono::seconds idle_exit_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable exited_cv_;
  std::deque<std::function<void()>> jobs_;
  int threads_ = 0;
  int idle_ = 0;
  bool stopping_ = false;
};

}  // namespace dspy::orchestrator
