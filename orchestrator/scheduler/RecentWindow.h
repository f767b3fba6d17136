// RecentWindow: the count and sum of values seen during the last fixed span of time
// (the old GetMetrics keys gpu_wait_seconds and env_error_rate are means over a window).
// Not thread-safe: its owner locks.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <utility>

#include "common/Clock.h"

namespace dspy::orchestrator {

class RecentWindow {
 public:
  explicit RecentWindow(std::chrono::milliseconds span = std::chrono::seconds(60), std::size_t max_samples = 10'000)
      : span_(span), max_samples_(max_samples) {}

  void add(Clock::MonotonicTime now, double value) {
    samples_.emplace_back(now, value);
    sum_ += value;
    if (samples_.size() > max_samples_) dropFront();
    trim(now);
  }
  std::size_t count(Clock::MonotonicTime now) {
    trim(now);
    return samples_.size();
  }
  double sum(Clock::MonotonicTime now) {
    trim(now);
    return samples_.empty() ? 0.0 : sum_;
  }

 private:
  void trim(Clock::MonotonicTime now) {
    while (!samples_.empty() && now - samples_.front().first > span_) dropFront();
  }
  void dropFront() {
    sum_ -= samples_.front().second;
    samples_.pop_front();
    if (samples_.empty()) sum_ = 0;  // no drift left over from subtractions
  }

  std::chrono::milliseconds span_;
  std::size_t max_samples_;
  std::deque<std::pair<Clock::MonotonicTime, double>> samples_;
  double sum_ = 0;
};

}  // namespace dspy::orchestrator
