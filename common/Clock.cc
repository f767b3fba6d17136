// Real and fake clocks.
#include "common/Clock.h"

#include <condition_variable>

namespace dspy {
namespace {
class RealClock final : public Clock {
 public:
  SystemTime systemTime() const override { return std::chrono::system_clock::now(); }
  MonotonicTime monotonicTime() const override { return std::chrono::steady_clock::now(); }
  bool sleepFor(std::chrono::nanoseconds d, std::stop_token stop) override {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    cv.wait_for(lock, stop, d, [] { return false; });
    return !stop.stop_requested();
  }
  bool waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable_any& cv, MonotonicTime deadline,
                 std::stop_token stop, const std::function<bool()>& pred) override {
    return cv.wait_until(lock, stop, deadline, pred);
  }
};
}  // namespace

Clock& Clock::real() {
  static RealClock clock;
  return clock;
}

Clock::SystemTime FakeClock::systemTime() const {
  std::lock_guard lock(mu_);
  return system_;
}

Clock::MonotonicTime FakeClock::monotonicTime() const {
  std::lock_guard lock(mu_);
  return monotonic_;
}

bool FakeClock::sleepFor(std::chrono::nanoseconds d, std::stop_token stop) {
  {
    std::lock_guard lock(mu_);
    sleeps_.push_back(d);
  }
  advance(d);
  return !stop.stop_requested();
}

bool FakeClock::waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable_any& cv, MonotonicTime deadline,
                          std::stop_token stop, const std::function<bool()>& pred) {
  while (!pred()) {
    if (stop.stop_requested() || monotonicTime() >= deadline) return false;
    cv.wait_for(lock, std::chrono::milliseconds(1));
  }
  return true;
}

std::vector<std::chrono::nanoseconds> FakeClock::sleeps() const {
  std::lock_guard lock(mu_);
  return sleeps_;
}

void FakeClock::advance(std::chrono::nanoseconds d) {
  std::lock_guard lock(mu_);
  monotonic_ += d;
  system_ += std::chrono::duration_cast<SystemTime::duration>(d);
}

void FakeClock::setSystemTime(SystemTime t) {
  std::lock_guard lock(mu_);
  system_ = t;
}

}  // namespace dspy
