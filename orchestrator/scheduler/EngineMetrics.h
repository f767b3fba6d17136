// EngineMetrics: the task engine's Prometheus series (the contract's names). Counters
// and histograms follow the engine's observer calls; the gauges (limit, in flight,
// queue depth) are read from TaskEngine::stats() when Prometheus scrapes.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "common/Metrics.h"
#include "orchestrator/scheduler/EngineObserver.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
template <class T>
class Family;
}  // namespace prometheus

namespace dspy::orchestrator {

class TaskEngine;

class EngineMetrics final : public EngineObserver {
 public:
  explicit EngineMetrics(Metrics& metrics);
  // Reads the gauges from `engine` at every scrape. Call once; `engine` must outlive
  // the scrapes (the daemon's metrics endpoint stops before the engine goes).
  void attach(TaskEngine& engine);

  void onAccepted(const std::string& cls) override;
  void onRejected(const std::string& cls, const std::string& reason) override;
  void onStarted(const std::string& cls, double queued_seconds) override;
  void onAttemptEnded(const std::string& cls, double seconds) override;
  void onRetryScheduled(const std::string& cls) override;
  void onFinished(const std::string& cls, TaskStatus status) override;

 private:
  struct PerClass {
    prometheus::Gauge* limit = nullptr;
    prometheus::Gauge* inflight = nullptr;
    prometheus::Gauge* depth = nullptr;
    prometheus::Counter* submitted = nullptr;
    prometheus::Counter* processed = nullptr;
    prometheus::Counter* completed = nullptr;
    prometheus::Counter* failed = nullptr;
    prometheus::Counter* cancelled = nullptr;
    prometheus::Counter* retries = nullptr;
    prometheus::Histogram* duration = nullptr;
    prometheus::Histogram* dispatch = nullptr;
  };
  PerClass& of(const std::string& cls);

  Metrics& metrics_;
  prometheus::Family<prometheus::Gauge>* limit_;
  prometheus::Family<prometheus::Gauge>* inflight_;
  prometheus::Family<prometheus::Gauge>* depth_;
  prometheus::Gauge* env_queue_depth_;
  prometheus::Family<prometheus::Counter>* submitted_;
  prometheus::Family<prometheus::Counter>* processed_;
  prometheus::Family<prometheus::Counter>* completed_;
  prometheus::Family<prometheus::Counter>* failed_;
  prometheus::Family<prometheus::Counter>* cancelled_;
  prometheus::Family<prometheus::Counter>* retries_;
  prometheus::Family<prometheus::Counter>* rejected_;
  prometheus::Family<prometheus::Histogram>* duration_;
  prometheus::Family<prometheus::Histogram>* dispatch_;

  std::mutex mu_;
  std::map<std::string, PerClass> classes_;
};

}  // namespace dspy::orchestrator
