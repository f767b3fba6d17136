// WorkerPool: threads for work that blocks (a task attempt's process or HTTP call, a
// Docker call behind an RPC). The pool grows to as many threads as jobs run at once,
// up to `max_threads`; jobs beyond that wait in a queue of at most `max_queued`, and
// run() refuses more. Idle threads stay a while instead of one thread per job.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace dspy {

class WorkerPool {
 public:
  struct Limits {
    int max_threads = 1 << 20;   // effectively unbounded: the caller bounds the work
    int max_queued = 1 << 30;
    std::chrono::seconds idle_exit{30};
  };
  WorkerPool() : WorkerPool(Limits{}) {}
  explicit WorkerPool(Limits limits) : limits_(limits) {}
  ~WorkerPool();  // waits for running and queued jobs
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `job` on a pool thread; false (and the job dropped) when the queue is full.
  bool run(std::function<void()> job);
  int threads() const;
  int queued() const;

 private:
  void loop();

  Limits limits_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable exited_cv_;
  std::deque<std::function<void()>> jobs_;
  int threads_ = 0;
  int idle_ = 0;
  bool stopping_ = false;
};

}  // namespace dspy
