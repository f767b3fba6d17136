// Exponential backoff with jitter.
#include "common/Backoff.h"

#include <algorithm>
#include <cmath>

namespace dspy {
namespace {
BackoffPolicy normalized(BackoffPolicy p) {
  p.multiplier = std::max(1.0, p.multiplier);
  p.jitter = std::clamp(p.jitter, 0.0, 1.0);
  if (p.max < p.initial) p.max = p.initial;
  return p;
}
}  // namespace

Backoff::Backoff(BackoffPolicy policy, std::uint64_t seed) : policy_(normalized(policy)), rng_(seed) {}

std::chrono::milliseconds Backoff::nominal(const BackoffPolicy& policy, int n) {
  const BackoffPolicy p = normalized(policy);
  const double cap = static_cast<double>(p.max.count());
  const double d = static_cast<double>(p.initial.count()) * std::pow(p.multiplier, std::max(0, n));
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::min(d, cap)));
}

std::chrono::milliseconds Backoff::next() {
  const double base = static_cast<double>(nominal(policy_, attempts_).count());
  double delay = base;
  if (policy_.jitter > 0) {
    std::uniform_real_distribution<double> dist(base * (1.0 - policy_.jitter), base);
    delay = dist(rng_);
  }
  ++attempts_;
  return std::chrono::milliseconds(static_cast<std::int64_t>(delay));
}

void Backoff::reset() { attempts_ = 0; }

}  // namespace dspy
