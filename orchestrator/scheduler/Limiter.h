// Concurrency limiters: how many tasks of one class may run at once. `fixed` never
// moves; `rules` is the old system's rule set (queue watermark, latency and error
// thresholds, fixed steps); `gradient` follows the latency gradient against a probed
// minimum latency, in the family of Netflix's Gradient2 and Envoy's adaptive
// concurrency filter.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/Clock.h"
#include "common/Result.h"

namespace dspy::orchestrator {

struct LimiterConfig {
  std::string kind = "gradient";  // fixed | rules | gradient
  int initial = 4;
  int min = 1;
  int max = 64;
  std::chrono::milliseconds window{250};  // how often rules/gradient re-evaluate
  // rules
  int step = 1;
  int queue_high_watermark = 8;  // grow when at least this many wait
  std::chrono::milliseconds latency_threshold{5000};  // shrink when the window's mean is above
  double error_threshold = 0.2;  // shrink when this share of the window failed
  // gradient
  int min_samples = 8;  // a window needs this many completions to count
  double tolerance = 1.5;  // accept latency up to min_latency * tolerance before shrinking
  double smoothing = 0.3;  // weight of the new estimate
  std::chrono::milliseconds probe_interval{30'000};  // re-measure the minimum latency
};

Status validate(const LimiterConfig& c, const std::string& where);
bool sameLimiter(const LimiterConfig& a, const LimiterConfig& b);

struct LimiterSample {
  Clock::MonotonicTime started;
  std::chrono::nanoseconds latency;
  bool failed = false;
};

class ConcurrencyLimiter {
 public:
  virtual ~ConcurrencyLimiter() = default;
  virtual int limit() const = 0;
  // A task finished; `inflight` counts tasks still running, `queued` tasks waiting.
  virtual void onSample(const LimiterSample& s, int inflight, int queued) = 0;
  // A task started (the gradient limiter tracks whether the class uses its limit).
  virtual void onStart(int inflight) { (void)inflight; }
  virtual std::string kind() const = 0;
  // The limiter's own notion of the baseline latency (0 when it has none).
  virtual std::chrono::nanoseconds minLatency() const { return {}; }
};

std::unique_ptr<ConcurrencyLimiter> makeLimiter(const LimiterConfig& cfg, Clock& clock);

class FixedLimiter final : public ConcurrencyLimiter {
 public:
  explicit FixedLimiter(int limit) : limit_(limit) {}
  int limit() const override { return limit_; }
  void onSample(const LimiterSample&, int, int) override {}
  std::string kind() const override { return "fixed"; }

 private:
  int limit_;
};

class RulesLimiter final : public ConcurrencyLimiter {
 public:
  RulesLimiter(LimiterConfig cfg, Clock& clock);
  int limit() const override { return limit_; }
  void onSample(const LimiterSample& s, int inflight, int queued) override;
  std::string kind() const override { return "rules"; }

 private:
  LimiterConfig cfg_;
  Clock& clock_;
  int limit_;
  Clock::MonotonicTime window_start_;
  int count_ = 0;
  int failures_ = 0;
  std::chrono::nanoseconds total_{0};
};

class GradientLimiter final : public ConcurrencyLimiter {
 public:
  GradientLimiter(LimiterConfig cfg, Clock& clock);
  int limit() const override { return static_cast<int>(limit_ + 0.5); }
  void onSample(const LimiterSample& s, int inflight, int queued) override;
  void onStart(int inflight) override;
  std::string kind() const override { return "gradient"; }
  std::chrono::nanoseconds minLatency() const override { return min_latency_; }

 private:
  void endWindow(int queued);

  LimiterConfig cfg_;
  Clock& clock_;
  double limit_;
  double saved_limit_ = 0;
  std::chrono::nanoseconds min_latency_{0};
  bool probing_ = true;  // the first window measures the minimum latency
  Clock::MonotonicTime probe_started_;
  Clock::MonotonicTime next_probe_;
  Clock::MonotonicTime window_start_;
  std::vector<std::chrono::nanoseconds> window_;
  int max_inflight_ = 0;
};

}  // namespace dspy::orchestrator
