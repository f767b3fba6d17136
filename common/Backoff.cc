// Exponential backoff with jitter.
#include "common/Backoff.h"

#include <algorithm>

namespace dspy {

Backoff::Backoff(BackoffPolicy policy, std::uint64_t seed)
    : policy_(policy), rng_(seed), current_ms_(static_cast<double>(policy.initial.count())) {
  policy_.multiplier = std::max(1.0, policy_.multiplier);
  policy_.jitter = std::clamp(policy_.jitter, 0.0, 1.0);
  if (policy_.max < policy_.initial) policy_.max = policy_.initial;
}

std::chrono::milliseconds Backoff::next() {
  const double cap = static_cast<double>(policy_.max.count());
  const double base = std::min(current_ms_, cap);
  double delay = base;
  if (policy_.jitter > 0) {
    std::uniform_real_distribution<double> dist(base * (1.0 - policy_.jitter), base);
    delay = dist(rng_);
  }
  current_ms_ = std::min(base * policy_.multiplier, cap);
  ++attempts_;
  return std::chrono::milliseconds(static_cast<std::int64_t>(delay));
}

void Backoff::reset() {
  current_ms_ = static_cast<double>(policy_.initial.count());
  attempts_ = 0;
}

}  // namespace dspy
