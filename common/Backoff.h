// Backoff: the project's one exponential-delay algorithm. Stateful (next/reset) for
// reconnect and restart loops: Docker's event stream and container restarts in
// env-manager, ensure_services towards env-manager in the orchestrator. Stateless
// (nominal) for task retries, whose schedule (RetryPolicy, orchestrator/tasks/Task.h)
// is persisted as an attempt number.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace dspy {

struct BackoffPolicy {
  std::chrono::milliseconds initial{100};
  std::chrono::milliseconds max{30'000};
  double multiplier = 2.0;
  // Each delay is drawn uniformly from [d * (1 - jitter), d] so that many retrying
  // clients spread out; 0 disables jitter.
  double jitter = 0.2;
};

class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy, std::uint64_t seed = std::random_device{}());

  // The delay before the next attempt; grows by `multiplier` up to `max`.
  std::chrono::milliseconds next();
  // The delay before attempt `n` (0 = the first delay) without jitter:
  // initial * multiplier^n, capped at max.
  static std::chrono::milliseconds nominal(const BackoffPolicy& policy, int n);
  // Back to the initial delay (after a success, or when a reset window has passed).
  void reset();
  // How many delays were handed out since the last reset.
  int attempts() const { return attempts_; }
  const BackoffPolicy& policy() const { return policy_; }

 private:
  BackoffPolicy policy_;
  std::mt19937_64 rng_;
  int attempts_ = 0;
};

}  // namespace dspy
