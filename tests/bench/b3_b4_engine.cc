// B3 and B4, in process, on the real TaskEngine.
// B3 dispatch: submit -> task started latency at a paced 1,000 tasks/s, and no-op task
//   completions per second from a burst, with the SQLite store (normal sync) beside the
//   same engine on the in-memory store (the baseline).
// B4 limiter: a simulated backend that serves `knee` tasks at a time in `base` each and
//   slows down in proportion past the knee; throughput and p99 latency of the gradient
//   and rules limiters beside the best fixed limit found by a sweep.
// Usage: b3_b4_engine OUT_DIR [--only b3|b4]
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "orchestrator/store/MemoryTaskStore.h"
#include "orchestrator/scheduler/TaskEngine.h"
#include "orchestrator/store/SqliteTaskStore.h"
#include "tests/bench/BenchStats.h"
#include "tests/support/Process.h"

using namespace dspy::orchestrator;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

// Records when each task started; completes at once.
class StampExecutor final : public Executor {
 public:
  std::string kind() const override { return "stamp"; }
  ExecOutcome execute(const ExecRequest& req, std::stop_token) override {
    const auto now = SteadyClock::now();
    {
      std::lock_guard lock(mu);
      started[req.task_id] = now;
    }
    done++;
    ExecOutcome o;
    o.success = true;
    return o;
  }
  std::mutex mu;
  std::map<std::string, SteadyClock::time_point> started;
  std::atomic<long> done{0};
};

EngineConfig oneClass(const std::string& executor, LimiterConfig limiter) {
  EngineConfig cfg;
  ClassConfig c;
  c.executor = executor;
  c.limiter = limiter;
  c.max_queued = 10'000'000;
  c.retry.max_attempts = 1;
  cfg.classes["bench"] = c;
  cfg.retain_finished = 1000;
  return cfg;
}

void submitAsync(TaskEngine& engine, const std::string& id, std::atomic<long>* accepted) {
  engine.submit(SubmitRequest{.id = id, .cls = "bench", .payload = {{"k", "v"}}},
                [accepted](dspy::Result<std::string> r) {
                  if (r.ok()) (*accepted)++;
                });
}

nlohmann::json b3(TaskStore& store, const std::string& label) {
  auto ex = std::make_shared<StampExecutor>();
  TaskEngine engine(oneClass("stamp", LimiterConfig{.kind = "fixed", .initial = 8, .min = 1, .max = 8}), store,
                    {{"bench", ex}}, dspy::Clock::real(), nullptr);
  (void)engine.recover();
  engine.start();
  std::atomic<long> accepted{0};
  // Paced: 1,000 tasks/s for 5 s.
  const int n = 5000;
  std::vector<SteadyClock::time_point> submitted(n);
  const auto t0 = SteadyClock::now();
  for (int i = 0; i < n; ++i) {
    std::this_thread::sleep_until(t0 + std::chrono::microseconds(1000 * i));
    submitted[static_cast<std::size_t>(i)] = SteadyClock::now();
    submitAsync(engine, "p" + std::to_string(i), &accepted);
  }
  dspy::test::eventually([&] { return ex->done.load() == n; }, 30s);
  std::vector<double> us;
  {
    std::lock_guard lock(ex->mu);
    for (int i = 0; i < n; ++i) {
      auto it = ex->started.find("p" + std::to_string(i));
      if (it != ex->started.end()) {
        us.push_back(std::chrono::duration<double, std::micro>(it->second - submitted[static_cast<std::size_t>(i)]).count());
      }
    }
  }
  auto paced = dspy::bench::summarize(us, 5.0);
  // Burst: 20,000 at once; completions per second until the last one finished.
  const int burst = 20000;
  const long before = ex->done.load();
  const auto b0 = SteadyClock::now();
  for (int i = 0; i < burst; ++i) submitAsync(engine, "b" + std::to_string(i), &accepted);
  dspy::test::eventually([&] { return ex->done.load() == before + burst; }, 120s);
  const double took = std::chrono::duration<double>(SteadyClock::now() - b0).count();
  engine.stop();
  std::printf("%-8s dispatch p50 %7.0f us  p99 %7.0f us  max %7.0f us | burst %d no-op tasks: %7.0f completions/s\n",
              label.c_str(), paced.p50_us, paced.p99_us, paced.max_us, burst, burst / took);
  return {{"dispatch_at_1000_per_s", dspy::bench::toJson(paced)}, {"burst_completions_per_s", burst / took}};
}

// The simulated backend: latency = base * max(1, running / knee), fixed at the start.
class Backend final : public Executor {
 public:
  Backend(std::chrono::milliseconds base, int knee) : base_(base), knee_(knee) {}
  std::string kind() const override { return "sim"; }
  ExecOutcome execute(const ExecRequest&, std::stop_token stop) override {
    const int now_running = ++running_;
    const auto lat = std::chrono::duration_cast<std::chrono::microseconds>(
        base_ * std::max(1.0, static_cast<double>(now_running) / knee_));
    const auto t0 = SteadyClock::now();
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    cv.wait_for(lock, stop, lat, [] { return false; });
    --running_;
    const double us = std::chrono::duration<double, std::micro>(SteadyClock::now() - t0).count();
    {
      std::lock_guard g(mu_);
      if (recording_) latencies_.push_back(us);
    }
    ++completed_;
    ExecOutcome o;
    o.success = true;
    return o;
  }
  void record(bool on) {
    std::lock_guard g(mu_);
    recording_ = on;
    if (on) latencies_.clear();
  }
  std::vector<double> latencies() {
    std::lock_guard g(mu_);
    return latencies_;
  }
  std::atomic<long> completed_{0};

 private:
  std::chrono::milliseconds base_;
  int knee_;
  std::atomic<int> running_{0};
  std::mutex mu_;
  bool recording_ = false;
  std::vector<double> latencies_;
};

struct B4Run {
  double throughput;
  double p99_ms;
  double p50_ms;
  int final_limit;
};

// Keeps a backlog in the queue for warmup + measure seconds; measures the last part.
B4Run runLimiter(LimiterConfig limiter, std::chrono::milliseconds base, int knee, std::chrono::seconds warmup,
                 std::chrono::seconds measure) {
  MemoryTaskStore store;
  auto backend = std::make_shared<Backend>(base, knee);
  TaskEngine engine(oneClass("sim", limiter), store, {{"bench", backend}}, dspy::Clock::real(), nullptr);
  engine.start();
  std::atomic<long> accepted{0};
  std::atomic<bool> stop{false};
  long next = 0;
  // A feeder tops the queue up so that it never runs dry (unlimited demand).
  std::thread feeder([&] {
    while (!stop) {
      if (engine.stats().classes["bench"].queued < 500) {
        for (int i = 0; i < 500; ++i) submitAsync(engine, "t" + std::to_string(next++), &accepted);
      }
      std::this_thread::sleep_for(5ms);
    }
  });
  std::this_thread::sleep_for(warmup);
  backend->record(true);
  const long c0 = backend->completed_.load();
  std::this_thread::sleep_for(measure);
  const long c1 = backend->completed_.load();
  backend->record(false);
  const int limit = engine.stats().classes["bench"].limit;
  stop = true;
  feeder.join();
  engine.stop();
  auto s = dspy::bench::summarize(backend->latencies(), static_cast<double>(measure.count()));
  return {static_cast<double>(c1 - c0) / static_cast<double>(measure.count()), s.p99_us / 1000, s.p50_us / 1000, limit};
}

nlohmann::json b4() {
  const auto base = 20ms;
  const int knee = 16;
  nlohmann::json out = {{"base_ms", base.count()}, {"knee", knee}};
  std::printf("B4: backend serves %d at a time in %lld ms (capacity %d/s)\n", knee,
              static_cast<long long>(base.count()), static_cast<int>(knee * 1000 / base.count()));
  auto unloaded = runLimiter(LimiterConfig{.kind = "fixed", .initial = 1, .min = 1, .max = 1}, base, knee, 1s, 2s);
  std::printf("%-16s %10s %10s %10s\n", "limiter", "tasks/s", "p50 ms", "p99 ms");
  std::printf("%-16s %10.0f %10.1f %10.1f   (unloaded latency)\n", "fixed 1", unloaded.throughput, unloaded.p50_ms,
              unloaded.p99_ms);
  out["unloaded_p99_ms"] = unloaded.p99_ms;
  B4Run best{0, 0, 0, 0};
  int best_limit = 0;
  nlohmann::json sweep = nlohmann::json::array();
  for (int l : {4, 8, 12, 16, 20, 24, 32, 48, 64}) {
    auto r = runLimiter(LimiterConfig{.kind = "fixed", .initial = l, .min = 1, .max = l}, base, knee, 1s, 3s);
    std::printf("%-16s %10.0f %10.1f %10.1f\n", ("fixed " + std::to_string(l)).c_str(), r.throughput, r.p50_ms,
                r.p99_ms);
    sweep.push_back({{"limit", l}, {"throughput", r.throughput}, {"p99_ms", r.p99_ms}});
    if (r.throughput > best.throughput) {
      best = r;
      best_limit = l;
    }
  }
  out["fixed_sweep"] = sweep;
  out["best_fixed"] = {{"limit", best_limit}, {"throughput", best.throughput}, {"p99_ms", best.p99_ms}};
  for (const std::string kind : {"gradient", "rules"}) {
    LimiterConfig cfg{.kind = kind, .initial = 4, .min = 1, .max = 200};
    if (kind == "rules") cfg.latency_threshold = std::chrono::milliseconds(base.count() * 3 / 2);
    auto r = runLimiter(cfg, base, knee, 5s, 5s);
    const double share = r.throughput / best.throughput;
    const double lat_ratio = r.p99_ms / unloaded.p99_ms;
    std::printf("%-16s %10.0f %10.1f %10.1f   final limit %d; %.0f%% of best fixed (%d); p99 %.2fx unloaded\n",
                kind.c_str(), r.throughput, r.p50_ms, r.p99_ms, r.final_limit, share * 100, best_limit, lat_ratio);
    out[kind] = {{"throughput", r.throughput}, {"p50_ms", r.p50_ms}, {"p99_ms", r.p99_ms}, {"final_limit", r.final_limit},
                 {"share_of_best_fixed", share}, {"p99_over_unloaded", lat_ratio}};
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: b3_b4_engine OUT_DIR [--only b3|b4]\n");
    return 2;
  }
  const std::string out_dir = argv[1];
  const std::string only = argc >= 4 ? argv[3] : "";
  std::filesystem::create_directories(out_dir);
  spdlog::set_level(spdlog::level::warn);
  if (only.empty() || only == "b3") {
    nlohmann::json j = {{"benchmark", "B3 dispatch"}};
    MemoryTaskStore mem;
    j["memory_store"] = b3(mem, "memory");
    auto sql = SqliteTaskStore::open(dspy::test::tempDir(), SyncMode::Normal);
    if (!sql) {
      std::fprintf(stderr, "%s\n", sql.error().c_str());
      return 1;
    }
    j["sqlite_store"] = b3(*sql.value(), "sqlite");
    dspy::bench::writeJson(out_dir + "/b3_dispatch.json", j);
  }
  if (only.empty() || only == "b4") {
    nlohmann::json j = b4();
    j["benchmark"] = "B4 limiter";
    dspy::bench::writeJson(out_dir + "/b4_limiter.json", j);
  }
  return 0;
}
