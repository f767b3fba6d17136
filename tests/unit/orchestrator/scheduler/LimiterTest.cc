// Concurrency limiters on a simulated backend with a fake clock: the backend serves
// `knee` tasks at a time in `service` each; beyond the knee, latency grows in
// proportion (a queue forms inside it). Throughput can never exceed knee/service.
#include <catch2/catch.hpp>

#include <algorithm>
#include <queue>

#include "orchestrator/scheduler/Limiter.h"

using namespace dspy::orchestrator;
using namespace std::chrono_literals;

namespace {

struct SimResult {
  double throughput = 0;  // completions per second in the measured part
  std::chrono::nanoseconds p99{0};
  double mean_limit = 0;
};

// Runs a closed loop with unlimited demand for `total`, measuring the second half.
SimResult simulate(ConcurrencyLimiter& limiter, dspy::FakeClock& clock, std::chrono::milliseconds service, int knee,
                   std::chrono::seconds total = 60s) {
  using Time = dspy::Clock::MonotonicTime;
  struct Running {
    Time finish, start;
    bool operator>(const Running& o) const { return finish > o.finish; }
  };
  std::priority_queue<Running, std::vector<Running>, std::greater<>> running;
  const Time begin = clock.monotonicTime();
  const Time measure_from = begin + total / 2;
  std::vector<std::chrono::nanoseconds> latencies;
  long completions = 0;
  double limit_sum = 0;
  long limit_n = 0;
  while (clock.monotonicTime() - begin < total) {
    while (static_cast<int>(running.size()) < limiter.limit()) {
      const int inflight = static_cast<int>(running.size()) + 1;
      const auto lat = std::chrono::duration_cast<std::chrono::nanoseconds>(service * std::max(1.0, double(inflight) / knee));
      running.push({clock.monotonicTime() + lat, clock.monotonicTime()});
      limiter.onStart(inflight);
    }
    const Running r = running.top();
    running.pop();
    clock.advance(r.finish - clock.monotonicTime());
    limiter.onSample(LimiterSample{r.start, r.finish - r.start, false}, static_cast<int>(running.size()), 1000);
    if (r.start >= measure_from) {
      latencies.push_back(r.finish - r.start);
      ++completions;
      limit_sum += limiter.limit();
      ++limit_n;
    }
  }
  SimResult out;
  std::sort(latencies.begin(), latencies.end());
  out.p99 = latencies.at(latencies.size() * 99 / 100);
  out.throughput = completions / std::chrono::duration<double>(total / 2).count();
  out.mean_limit = limit_sum / static_cast<double>(limit_n);
  return out;
}

}  // namespace

TEST_CASE("fixed limiter never moves", "[orchestrator][limiter]") {
  dspy::FakeClock clock;
  FixedLimiter l(5);
  auto r = simulate(l, clock, 10ms, 8, 10s);
  CHECK(l.limit() == 5);
  CHECK(r.mean_limit == 5);
  // Below the knee: 5 tasks per 10 ms.
  CHECK(r.throughput == Approx(500).epsilon(0.02));
}

TEST_CASE("gradient limiter converges near the knee: full throughput, bounded latency", "[orchestrator][limiter]") {
  for (int knee : {4, 16, 40}) {
    dspy::FakeClock clock;
    LimiterConfig cfg{.kind = "gradient", .initial = 2, .min = 1, .max = 500};
    GradientLimiter l(cfg, clock);
    const auto service = 20ms;
    auto r = simulate(l, clock, service, knee);
    const double p99_ms = std::chrono::duration<double, std::milli>(r.p99).count();
    INFO("knee " << knee << " mean limit " << r.mean_limit << " throughput " << r.throughput << " p99 ms " << p99_ms);
    const double best = knee / 0.020;
    CHECK(r.throughput >= 0.9 * best);
    CHECK(r.p99 <= 2 * service);
    CHECK(r.mean_limit >= knee * 0.9);
    CHECK(r.mean_limit <= knee * 2.0);
    CHECK(l.minLatency() == service);
  }
}

TEST_CASE("gradient limiter shrinks when the backend slows down and re-probes its baseline", "[orchestrator][limiter]") {
  dspy::FakeClock clock;
  LimiterConfig cfg{.kind = "gradient", .initial = 2, .min = 1, .max = 500, .probe_interval = 5s};
  GradientLimiter l(cfg, clock);
  simulate(l, clock, 10ms, 32, 30s);
  const int before = l.limit();
  CHECK(before >= 28);
  // The backend loses capacity: only 8 at a time now, twice as slow.
  auto r = simulate(l, clock, 20ms, 8, 60s);
  CHECK(r.mean_limit <= 8 * 2.0);
  CHECK(r.p99 <= 40ms);
  CHECK(l.minLatency() == 20ms);
}

TEST_CASE("gradient limiter does not grow while the class uses under half its limit", "[orchestrator][limiter]") {
  dspy::FakeClock clock;
  LimiterConfig cfg{.kind = "gradient", .initial = 10, .min = 1, .max = 100, .window = 100ms, .min_samples = 2};
  GradientLimiter l(cfg, clock);
  // Probe window first (limit at min), then app-limited traffic: 2 in flight, nothing queued.
  l.onStart(1);
  clock.advance(150ms);
  l.onSample({clock.monotonicTime() - 10ms, 10ms, false}, 0, 0);
  REQUIRE(l.limit() == 10);
  for (int i = 0; i < 200; ++i) {
    l.onStart(2);
    clock.advance(60ms);
    l.onSample({clock.monotonicTime() - 10ms, 10ms, false}, 1, 0);
  }
  CHECK(l.limit() == 10);
}

TEST_CASE("rules limiter: grows on queue watermark, shrinks on latency and errors, in fixed steps",
          "[orchestrator][limiter]") {
  dspy::FakeClock clock;
  LimiterConfig cfg{.kind = "rules", .initial = 4, .min = 2, .max = 6, .window = 1s, .step = 1,
                    .queue_high_watermark = 5, .latency_threshold = 100ms, .error_threshold = 0.5};
  RulesLimiter l(cfg, clock);
  auto window = [&](std::chrono::milliseconds lat, bool failed, int queued) {
    clock.advance(1s);
    l.onSample({clock.monotonicTime() - lat, lat, failed}, 0, queued);
  };
  window(10ms, false, 4);  // under the watermark: hold
  CHECK(l.limit() == 4);
  window(10ms, false, 5);
  CHECK(l.limit() == 5);
  window(10ms, false, 50);
  window(10ms, false, 50);
  CHECK(l.limit() == 6);  // max
  window(500ms, false, 50);  // too slow: shrink even with a queue
  CHECK(l.limit() == 5);
  window(10ms, true, 50);  // errors: shrink
  CHECK(l.limit() == 4);
  window(500ms, true, 0);
  window(500ms, true, 0);
  window(500ms, true, 0);
  CHECK(l.limit() == 2);  // min
}

TEST_CASE("rules limiter reaches the knee's throughput with a latency threshold", "[orchestrator][limiter]") {
  dspy::FakeClock clock;
  LimiterConfig cfg{.kind = "rules", .initial = 1, .min = 1, .max = 500, .window = 250ms, .step = 1,
                    .queue_high_watermark = 8, .latency_threshold = 30ms};
  RulesLimiter l(cfg, clock);
  auto r = simulate(l, clock, 20ms, 16);
  CHECK(r.throughput >= 0.9 * 16 / 0.020);
  CHECK(r.p99 <= 40ms);
}

TEST_CASE("limiter config is validated", "[orchestrator][limiter]") {
  CHECK(validate(LimiterConfig{}, "x").ok());
  CHECK_FALSE(validate(LimiterConfig{.kind = "magic"}, "x").ok());
  CHECK_FALSE(validate(LimiterConfig{.initial = 4, .min = 5, .max = 10}, "x").ok());
  CHECK_FALSE(validate(LimiterConfig{.initial = 4, .min = 1, .max = 2}, "x").ok());
  CHECK_FALSE(validate(LimiterConfig{.min = 0}, "x").ok());
  CHECK_FALSE(validate(LimiterConfig{.tolerance = 0.5}, "x").ok());
}
