// Clock: the one seam through which code reads time, so that backoff, probes, limiters
// and pollers are tested by advancing a fake clock instead of sleeping.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
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
  // Waits on `cv`, whose mutex `lock` holds, until `pred()` holds, this clock reaches
  // `deadline`, or `stop` is requested; returns pred(). Whoever makes `pred` true
  // changes its state under the same mutex and notifies `cv`.
  virtual bool waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable_any& cv, MonotonicTime deadline,
                         std::stop_token stop, const std::function<bool()>& pred) = 0;

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
  // Blocks (really) until `pred()`, `stop`, or advance() moved the clock to `deadline`.
  // It looks at the clock at least every millisecond, so advance() needs no notify.
  bool waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable_any& cv, MonotonicTime deadline,
                 std::stop_token stop, const std::function<bool()>& pred) override;
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
