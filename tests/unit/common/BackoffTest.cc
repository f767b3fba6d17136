// Backoff growth, cap, jitter bounds and reset.
#include <catch2/catch.hpp>

#include <set>

#include "common/Backoff.h"

using namespace std::chrono_literals;

TEST_CASE("without jitter delays double up to the cap", "[backoff]") {
  dspy::Backoff b({.initial = 100ms, .max = 1000ms, .multiplier = 2.0, .jitter = 0.0}, 1);
  CHECK(b.next() == 100ms);
  CHECK(b.next() == 200ms);
  CHECK(b.next() == 400ms);
  CHECK(b.next() == 800ms);
  CHECK(b.next() == 1000ms);
  CHECK(b.next() == 1000ms);
  CHECK(b.attempts() == 6);
}

TEST_CASE("reset returns to the initial delay", "[backoff]") {
  dspy::Backoff b({.initial = 50ms, .max = 10s, .multiplier = 3.0, .jitter = 0.0}, 1);
  b.next();
  b.next();
  b.reset();
  CHECK(b.attempts() == 0);
  CHECK(b.next() == 50ms);
  CHECK(b.next() == 150ms);
}

TEST_CASE("jitter keeps every delay within [base*(1-j), base] and spreads them", "[backoff]") {
  dspy::Backoff b({.initial = 1000ms, .max = 1000ms, .multiplier = 2.0, .jitter = 0.5}, 42);
  std::set<long> distinct;
  for (int i = 0; i < 200; ++i) {
    const auto d = b.next();
    REQUIRE(d >= 500ms);
    REQUIRE(d <= 1000ms);
    distinct.insert(d.count());
  }
  CHECK(distinct.size() > 50);
}

TEST_CASE("the same seed gives the same schedule", "[backoff]") {
  const dspy::BackoffPolicy p{.initial = 10ms, .max = 5s, .multiplier = 1.7, .jitter = 0.3};
  dspy::Backoff a(p, 7);
  dspy::Backoff b(p, 7);
  for (int i = 0; i < 20; ++i) REQUIRE(a.next() == b.next());
}

TEST_CASE("nonsense policies are clamped instead of misbehaving", "[backoff]") {
  dspy::Backoff b({.initial = 100ms, .max = 10ms, .multiplier = 0.1, .jitter = 7.0}, 3);
  for (int i = 0; i < 10; ++i) {
    const auto d = b.next();
    REQUIRE(d >= 0ms);
    REQUIRE(d <= 100ms);
  }
}
