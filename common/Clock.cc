// Real and fake clocks.
#include "common/Clock.h"

namespace dspy {
namespace {
class RealClock final : public Clock {
 public:
  SystemTime systemTime() const override { return std::chrono::system_clock::now(); }
  MonotonicTime monotonicTime() const override { return std::chrono::steady_clock::now(); }
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
