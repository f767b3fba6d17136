#include "orchestrator/store/WriteQueue.h"

#include <algorithm>
#include <iterator>

namespace dspy::orchestrator {

WriteQueue::WriteQueue(Commit commit, int max_batch)
    : commit_(std::move(commit)),
      max_batch_(static_cast<std::size_t>(std::max(1, max_batch))),
      thread_([this](std::stop_token stop) { loop(stop); }) {}

WriteQueue::~WriteQueue() {
  flush();
  thread_.request_stop();
  thread_.join();
}

void WriteQueue::push(Write write) {
  {
    std::lock_guard lock(mu_);
    pending_.push_back(std::move(write));
  }
  cv_.notify_one();
}

void WriteQueue::flush() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [this] { return pending_.empty() && !busy_; });
}

void WriteQueue::loop(std::stop_token stop) {
  std::vector<Write> batch;
  std::vector<Status> outcomes;
  std::vector<Event> events;
  while (true) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, stop, [this] { return !pending_.empty(); });
      if (pending_.empty()) return;  // stopped with nothing left
      const auto n = static_cast<std::ptrdiff_t>(std::min(pending_.size(), max_batch_));
      batch.assign(std::make_move_iterator(pending_.begin()), std::make_move_iterator(pending_.begin() + n));
      pending_.erase(pending_.begin(), pending_.begin() + n);
      busy_ = true;
    }
    outcomes.assign(batch.size(), Status::Ok());
    commit_(batch, outcomes);
    if (committed_) {
      events.clear();
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (!outcomes[i].ok()) continue;
        for (auto& e : batch[i].events) events.push_back(std::move(e));
      }
      if (!events.empty()) committed_(events);
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].done) batch[i].done(outcomes[i]);
    }
    batch.clear();
    {
      std::lock_guard lock(mu_);
      busy_ = false;
    }
    idle_cv_.notify_all();
  }
}

}  // namespace dspy::orchestrator
