// The run and step status words, and the run watchers' queue.
#include "orchestrator/workflows/WorkflowEngine.h"

namespace dspy::orchestrator {

// ------------------------------------------------------------------ records' words

const char* toString(RunStatus s) {
  switch (s) {
    case RunStatus::Pending: return "pending";
    case RunStatus::Running: return "running";
    case RunStatus::Succeeded: return "succeeded";
    case RunStatus::Failed: return "failed";
    case RunStatus::Cancelled: return "cancelled";
  }
  return "unknown";
}

const char* toString(StepStatus s) {
  switch (s) {
    case StepStatus::Pending: return "pending";
    case StepStatus::Running: return "running";
    case StepStatus::Succeeded: return "succeeded";
    case StepStatus::Failed: return "failed";
    case StepStatus::Skipped: return "skipped";
  }
  return "unknown";
}

std::optional<RunStatus> parseRunStatus(const std::string& s) {
  for (auto v : {RunStatus::Pending, RunStatus::Running, RunStatus::Succeeded, RunStatus::Failed, RunStatus::Cancelled}) {
    if (s == toString(v)) return v;
  }
  return std::nullopt;
}

std::optional<StepStatus> parseStepStatus(const std::string& s) {
  for (auto v : {StepStatus::Pending, StepStatus::Running, StepStatus::Succeeded, StepStatus::Failed, StepStatus::Skipped}) {
    if (s == toString(v)) return v;
  }
  return std::nullopt;
}

// ------------------------------------------------------------------ watches

std::deque<RunRecord> RunWatch::next(std::stop_token stop) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, stop, [&] { return !changes_.empty(); });
  std::deque<RunRecord> out;
  out.swap(changes_);
  return out;
}

void RunWatch::push(const RunRecord& r) {
  std::lock_guard lock(mu_);
  changes_.push_back(r);
  cv_.notify_all();
}

}  // namespace dspy::orchestrator
