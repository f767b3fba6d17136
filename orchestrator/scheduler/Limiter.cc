// The three concurrency limiters.
#include "orchestrator/scheduler/Limiter.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace dspy::orchestrator {

Status validate(const LimiterConfig& c, const std::string& where) {
  auto bad = [&](const std::string& m) { return Status(Error{where + ": " + m, ErrorKind::InvalidArgument}); };
  if (c.kind != "fixed" && c.kind != "rules" && c.kind != "gradient") {
    return bad("kind must be fixed, rules or gradient, not '" + c.kind + "'");
  }
  if (c.min < 1) return bad("min must be at least 1");
  if (c.max < c.min) return bad("max (" + std::to_string(c.max) + ") is below min (" + std::to_string(c.min) + ")");
  if (c.initial < c.min || c.initial > c.max) return bad("initial must lie between min and max");
  if (c.window.count() <= 0) return bad("window must be positive");
  if (c.tolerance < 1.0) return bad("tolerance must be at least 1.0");
  if (c.smoothing <= 0 || c.smoothing > 1) return bad("smoothing must be in (0, 1]");
  return Status::Ok();
}

bool sameLimiter(const LimiterConfig& a, const LimiterConfig& b) {
  return a.kind == b.kind && a.initial == b.initial && a.min == b.min && a.max == b.max && a.window == b.window &&
         a.step == b.step && a.queue_high_watermark == b.queue_high_watermark &&
         a.latency_threshold == b.latency_threshold && a.error_threshold == b.error_threshold &&
         a.min_samples == b.min_samples && a.tolerance == b.tolerance && a.smoothing == b.smoothing &&
         a.probe_interval == b.probe_interval;
}

std::unique_ptr<ConcurrencyLimiter> makeLimiter(const LimiterConfig& cfg, Clock& clock) {
  if (cfg.kind == "fixed") return std::make_unique<FixedLimiter>(cfg.initial);
  if (cfg.kind == "rules") return std::make_unique<RulesLimiter>(cfg, clock);
  return std::make_unique<GradientLimiter>(cfg, clock);
}

RulesLimiter::RulesLimiter(LimiterConfig cfg, Clock& clock)
    : cfg_(std::move(cfg)), clock_(clock), limit_(cfg_.initial), window_start_(clock.monotonicTime()) {}

void RulesLimiter::onSample(const LimiterSample& s, int, int queued) {
  ++count_;
  if (s.failed) ++failures_;
  total_ += s.latency;
  const auto now = clock_.monotonicTime();
  if (now - window_start_ < cfg_.window) return;
  const double error_rate = count_ ? static_cast<double>(failures_) / count_ : 0.0;
  const auto mean = count_ ? total_ / count_ : std::chrono::nanoseconds(0);
  if (error_rate > cfg_.error_threshold || mean > cfg_.latency_threshold) {
    limit_ = std::max(cfg_.min, limit_ - cfg_.step);
  } else if (queued >= cfg_.queue_high_watermark) {
    limit_ = std::min(cfg_.max, limit_ + cfg_.step);
  }
  window_start_ = now;
  count_ = failures_ = 0;
  total_ = {};
}

GradientLimiter::GradientLimiter(LimiterConfig cfg, Clock& clock)
    : cfg_(std::move(cfg)), clock_(clock), limit_(cfg_.initial) {
  const auto now = clock_.monotonicTime();
  window_start_ = probe_started_ = now;
  next_probe_ = now + cfg_.probe_interval;
  // The first window runs at the minimum so that it measures unloaded latency.
  saved_limit_ = limit_;
  limit_ = cfg_.min;
}

void GradientLimiter::onStart(int inflight) { max_inflight_ = std::max(max_inflight_, inflight); }

void GradientLimiter::onSample(const LimiterSample& s, int, int queued) {
  // While probing, only tasks that started after the limit was lowered show the
  // unloaded latency.
  if (!probing_ || s.started >= probe_started_) window_.push_back(s.latency);
  const auto now = clock_.monotonicTime();
  // A probe runs at the minimum limit, where samples come slowly: one clean sample
  // is enough there (the probe repeats every probe_interval).
  const int needed = probing_ ? 1 : cfg_.min_samples;
  if (now - window_start_ >= cfg_.window && static_cast<int>(window_.size()) >= needed) endWindow(queued);
}

void GradientLimiter::endWindow(int queued) {
  const auto now = clock_.monotonicTime();
  // The window's median is robust against the odd slow task.
  auto mid = window_.begin() + static_cast<std::ptrdiff_t>(window_.size() / 2);
  std::nth_element(window_.begin(), mid, window_.end());
  const auto sample = *mid;
  window_start_ = now;
  const int max_inflight = std::exchange(max_inflight_, 0);
  struct Clear {
    std::vector<std::chrono::nanoseconds>& w;
    ~Clear() { w.clear(); }
  } clear{window_};

  if (probing_) {
    // The smallest of the probe's samples: the backend's unloaded latency.
    const auto smallest = *std::min_element(window_.begin(), window_.end());
    min_latency_ = std::max(smallest, std::chrono::nanoseconds(1));
    probing_ = false;
    limit_ = saved_limit_;
    next_probe_ = now + cfg_.probe_interval;
    return;
  }
  if (now >= next_probe_) {
    // Drop to the minimum for one window and re-measure; the backend may have become
    // faster or slower since the last probe.
    probing_ = true;
    probe_started_ = now;
    saved_limit_ = limit_;
    limit_ = cfg_.min;
    return;
  }
  const double target = static_cast<double>(min_latency_.count()) * cfg_.tolerance;
  const double gradient = std::clamp(target / static_cast<double>(sample.count()), 0.5, 1.0);
  // Room to grow while latency holds: sqrt(limit) more, as Envoy and Gradient2 do.
  const double headroom = gradient >= 1.0 ? std::sqrt(limit_) : 0.0;
  double next = limit_ * gradient + headroom;
  // App-limited guard: when the class did not use half its limit, there is no
  // evidence for more.
  if (next > limit_ && max_inflight < limit_ / 2 && queued == 0) next = limit_;
  limit_ = (1.0 - cfg_.smoothing) * limit_ + cfg_.smoothing * next;
  limit_ = std::clamp(limit_, static_cast<double>(cfg_.min), static_cast<double>(cfg_.max));
}

}  // namespace dspy::orchestrator
