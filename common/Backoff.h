// Backoff: exponential delays with jitter for the daemons' reconnect and restart loops
// (Docker's event stream, container restarts, ensure_services towards env-manager).
// Task retries follow their class's RetryPolicy schedule (orchestrator/tasks/Task.h).
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
  // Back to the initial delay (after a success, or when a reset window has passed).
  void reset();
  // How many delays were handed out since the last reset.
  int attempts() const { return attempts_; }
  const BackoffPolicy& policy() const { return policy_; }

 private:
  BackoffPolicy policy_;
  std::mt19937_64 rng_;
  double current_ms_;
  int attempts_ = 0;
};

}  // namespace dspy
