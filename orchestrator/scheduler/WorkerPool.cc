// The attempt threads.
#include "orchestrator/scheduler/WorkerPool.h"

#include <thread>

namespace dspy::orchestrator {

WorkerPool::~WorkerPool() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  cv_.notify_all();
  exited_cv_.wait(lock, [this] { return threads_ == 0; });
}

void WorkerPool::run(std::function<void()> job) {
  std::lock_guard lock(mu_);
  jobs_.push_back(std::move(job));
  if (idle_ > static_cast<int>(jobs_.size()) - 1) {
    cv_.notify_one();
    return;
  }
  ++threads_;
  std::thread([this] { loop(); }).detach();
}

int WorkerPool::threads() const {
  std::lock_guard lock(mu_);
  return threads_;
}

void WorkerPool::loop() {
  std::unique_lock lock(mu_);
  while (true) {
    ++idle_;
    const bool woke = cv_.wait_for(lock, idle_exit_, [this] { return !jobs_.empty() || stopping_; });
    --idle_;
    if (jobs_.empty() && (stopping_ || !woke)) break;
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
  // The last thing this thread does with the pool, under its lock: after notify the
  // destructor may free the pool.
  --threads_;
  exited_cv_.notify_all();
}

}  // namespace dspy::orchestrator
