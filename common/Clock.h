// Clock: the one seam through which code reads time, so that backoff, probes, limiters
// and pollers are tested by advancing a fake clock instead of sleeping.
#pragma once

#include <chrono>
#include <mutex>
#include <stop_token>
#include <vector>

namespace dspy {

class Clock {
 public:
  using SystemTime = std::chrono::system_clock::time_point;
  using MonotonicTime = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  // Wall-clock time, for display and timestamps only.
  virtual SystemTime systemTime() const = 0;
  // Monotonic time, for every interval and deadline.
  virtual MonotonicTime monotonicTime() const = 0;
  // Waits `d` unless `stop` is requested first; false when stopped.
  virtual bool sleepFor(std::chrono::nanoseconds d, std::stop_token stop) = 0;

  // The process-wide real clock.
  static Clock& real();
};

// A clock that moves only when told to; safe to read from several threads.
class FakeClock final : public Clock {
 public:
  SystemTime systemTime() const override;
  MonotonicTime monotonicTime() const override;
  // Does not block: moves the clock by `d` and records the request.
  bool sleepFor(std::chrono::nanoseconds d, std::stop_token stop) override;
  void advance(std::chrono::nanoseconds d);
  void setSystemTime(SystemTime t);
  std::vector<std::chrono::nanoseconds> sleeps() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::chrono::nanoseconds> sleeps_;
  SystemTime system_{std::chrono::seconds(1'700'000'000)};
  MonotonicTime monotonic_{std::chrono::seconds(1000)};
};

}  // namespace dspy
