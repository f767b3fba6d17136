// EngineObserver: what the task engine tells about its work, for metrics. The engine
// holds no metric objects; EngineMetrics (beside it) turns these calls into Prometheus
// series, tests may count them. Calls come from any thread, some under the engine's
// lock: an observer must be quick and must not call back into the engine.
#pragma once

#include <string>

#include "orchestrator/tasks/Task.h"

namespace dspy::orchestrator {

class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  // `cls` is the configured class a task runs under.
  virtual void onAccepted(const std::string& /*cls*/) {}
  virtual void onRejected(const std::string& /*cls*/, const std::string& /*reason*/) {}
  virtual void onStarted(const std::string& /*cls*/, double /*queued_seconds*/) {}
  virtual void onAttemptEnded(const std::string& /*cls*/, double /*seconds*/) {}
  virtual void onRetryScheduled(const std::string& /*cls*/) {}
  virtual void onFinished(const std::string& /*cls*/, TaskStatus /*status*/) {}
};

}  // namespace dspy::orchestrator
