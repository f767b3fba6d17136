#include "common/WorkerPool.h"

#include <thread>

namespace dspy {

WorkerPool::~WorkerPool() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  cv_.notify_all();
  exited_cv_.wait(lock, [this] { return threads_ == 0; });
}

bool WorkerPool::run(std::function<void()> job) {
  std::lock_guard lock(mu_);
  const int waiting = static_cast<int>(jobs_.size());
  const bool needs_thread = idle_ <= waiting;  // every idle thread already has a job to take
  if (needs_thread && threads_ >= limits_.max_threads && waiting >= limits_.max_queued) return false;
  jobs_.push_back(std::move(job));
  if (!needs_thread || threads_ >= limits_.max_threads) {
    cv_.notify_one();
    return true;
  }
  ++threads_;
  std::thread([this] { loop(); }).detach();
  return true;
}

int WorkerPool::threads() const {
  std::lock_guard lock(mu_);
  return threads_;
}

int WorkerPool::queued() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(jobs_.size());
}

void WorkerPool::loop() {
  std::unique_lock lock(mu_);
  while (true) {
    ++idle_;
    const bool woke = cv_.wait_for(lock, limits_.idle_exit, [this] { return !jobs_.empty() || stopping_; });
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

}  // namespace dspy
