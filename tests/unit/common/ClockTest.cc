// The fake clock moves only when told to.
#include <catch2/catch.hpp>

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
