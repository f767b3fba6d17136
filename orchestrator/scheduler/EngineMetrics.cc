#include "orchestrator/scheduler/EngineMetrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "orchestrator/scheduler/TaskEngine.h"

namespace dspy::orchestrator {
namespace {

const prometheus::Histogram::BucketBoundaries kLatencyBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                              0.1,    0.25,  0.5,    1,     2.5,  5,     10,
                                                              30,     60,    300,    900,   3600};

template <class Builder>
auto& family(Builder b, const char* name, const char* help, prometheus::Registry& r) {
  return b.Name(name).Help(help).Register(r);
}

}  // namespace

EngineMetrics::EngineMetrics(Metrics& metrics)
    : metrics_(metrics),
      limit_(&family(prometheus::BuildGauge(), "orchestrator_concurrency_limit", "Concurrency limit per task class",
                     metrics.registry())),
      inflight_(&family(prometheus::BuildGauge(), "orchestrator_inflight_tasks", "Tasks running per class",
                        metrics.registry())),
      depth_(&family(prometheus::BuildGauge(), "queue_depth", "Tasks waiting to run per class (including retry waits)",
                     metrics.registry())),
      env_queue_depth_(&family(prometheus::BuildGauge(), "env_queue_depth", "Tasks waiting to run, all classes",
                               metrics.registry())
                            .Add({})),
      submitted_(&family(prometheus::BuildCounter(), "queue_tasks_submitted_total", "Tasks accepted",
                         metrics.registry())),
      processed_(&family(prometheus::BuildCounter(), "queue_tasks_processed_total", "Task attempts that ended",
                         metrics.registry())),
      completed_(&family(prometheus::BuildCounter(), "queue_tasks_completed_total",
                         "Tasks that completed successfully", metrics.registry())),
      failed_(&family(prometheus::BuildCounter(), "orchestrator_tasks_failed_total", "Tasks that failed for good",
                      metrics.registry())),
      cancelled_(&family(prometheus::BuildCounter(), "orchestrator_tasks_cancelled_total", "Tasks cancelled",
                         metrics.registry())),
      retries_(&family(prometheus::BuildCounter(), "orchestrator_task_retries_total",
                       "Attempts scheduled again after a failure", metrics.registry())),
      rejected_(&family(prometheus::BuildCounter(), "orchestrator_tasks_rejected_total", "Submissions refused, by reason",
                        metrics.registry())),
      duration_(&family(prometheus::BuildHistogram(), "orchestrator_task_duration_seconds", "Attempt latency per class",
                        metrics.registry())),
      dispatch_(&family(prometheus::BuildHistogram(), "orchestrator_task_dispatch_seconds",
                        "From queued to started per class", metrics.registry())) {}

EngineMetrics::PerClass& EngineMetrics::of(const std::string& cls) {
  std::lock_guard lock(mu_);
  auto [it, added] = classes_.try_emplace(cls);
  if (added) {
    const std::map<std::string, std::string> l{{"class", cls}};
    PerClass& c = it->second;
    c.limit = &limit_->Add(l);
    c.inflight = &inflight_->Add(l);
    c.depth = &depth_->Add(l);
    c.submitted = &submitted_->Add(l);
    c.processed = &processed_->Add(l);
    c.completed = &completed_->Add(l);
    c.failed = &failed_->Add(l);
    c.cancelled = &cancelled_->Add(l);
    c.retries = &retries_->Add(l);
    c.duration = &duration_->Add(l, kLatencyBuckets);
    c.dispatch = &dispatch_->Add(l, kLatencyBuckets);
  }
  return it->second;  // std::map nodes stay where they are
}

void EngineMetrics::attach(TaskEngine& engine) {
  for (const auto& [cls, c] : engine.stats().classes) of(cls);  // every class has series from the start
  metrics_.addScrapeHook([this, &engine] {
    double total = 0;
    for (const auto& [cls, c] : engine.stats().classes) {
      PerClass& m = of(cls);
      m.limit->Set(c.limit);
      m.inflight->Set(c.inflight);
      m.depth->Set(c.queued);
      total += c.queued;
    }
    env_queue_depth_->Set(total);
  });
}

void EngineMetrics::onAccepted(const std::string& cls) { of(cls).submitted->Increment(); }

void EngineMetrics::onRejected(const std::string& cls, const std::string& reason) {
  rejected_->Add({{"class", cls}, {"reason", reason}}).Increment();
}

void EngineMetrics::onStarted(const std::string& cls, double queued_seconds) {
  of(cls).dispatch->Observe(queued_seconds);
}

void EngineMetrics::onAttemptEnded(const std::string& cls, double seconds) {
  PerClass& c = of(cls);
  c.processed->Increment();
  c.duration->Observe(seconds);
}

void EngineMetrics::onRetryScheduled(const std::string& cls) { of(cls).retries->Increment(); }

void EngineMetrics::onFinished(const std::string& cls, TaskStatus status) {
  PerClass& c = of(cls);
  if (status == TaskStatus::Completed) {
    c.completed->Increment();
  } else if (status == TaskStatus::Failed) {
    c.failed->Increment();
  } else {
    c.cancelled->Increment();
  }
}

}  // namespace dspy::orchestrator
