// The fake clock moves only when told to.
#include <catch2/catch.hpp>

#include <thread>

#include "common/Clock.h"

using namespace std::chrono_literals;

TEST_CASE("the fake clock advances both times together", "[clock]") {
  dspy::FakeClock clock;
  const auto m0 = clock.monotonicTime();
  const auto s0 = clock.systemTime();
  CHECK(clock.monotonicTime() == m0);
  clock.advance(1500ms);
  CHECK(clock.monotonicTime() - m0 == 1500ms);
  CHECK(clock.systemTime() - s0 == 1500ms);
}

TEST_CASE("the real clock's monotonic time never goes back", "[clock]") {
  auto& clock = dspy::Clock::real();
  auto prev = clock.monotonicTime();
  for (int i = 0; i < 1000; ++i) {
    const auto now = clock.monotonicTime();
    REQUIRE(now >= prev);
    prev = now;
  }
}

TEST_CASE("a wait on the fake clock ends when the clock reaches the deadline, or at once when the predicate holds",
          "[clock]") {
  dspy::FakeClock clock;
  std::mutex mu;
  std::condition_variable_any cv;
  bool flag = false;
  const auto deadline = clock.monotonicTime() + 10s;
  std::thread mover([&] { clock.advance(10s); });
  {
    std::unique_lock lock(mu);
    CHECK_FALSE(clock.waitUntil(lock, cv, deadline, {}, [&] { return flag; }));
  }
  mover.join();
  CHECK(clock.monotonicTime() >= deadline);
  std::thread setter([&] {
    std::lock_guard lock(mu);
    flag = true;
    cv.notify_all();
  });
  {
    std::unique_lock lock(mu);
    CHECK(clock.waitUntil(lock, cv, clock.monotonicTime() + 1h, {}, [&] { return flag; }));
  }
  setter.join();
}

TEST_CASE("a wait on the real clock times out at its deadline and stops when asked", "[clock]") {
  auto& clock = dspy::Clock::real();
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  const auto start = clock.monotonicTime();
  CHECK_FALSE(clock.waitUntil(lock, cv, start + 20ms, {}, [] { return false; }));
  CHECK(clock.monotonicTime() - start >= 20ms);
  std::stop_source stop;
  stop.request_stop();
  CHECK_FALSE(clock.waitUntil(lock, cv, clock.monotonicTime() + 1h, stop.get_token(), [] { return false; }));
}
