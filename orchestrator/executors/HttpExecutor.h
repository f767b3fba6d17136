// HttpExecutor: hands a task to the env-runner over HTTP (POST {ENV_RUNNER_URL}/tasks/execute),
// the old orchestrator's way of running every task.
#pragma once

#include <mutex>
#include <string>

#include "orchestrator/executors/Executor.h"

namespace dspy::orchestrator {

// The old env-runner's API. Request body: {"id", "class", "payload": {...}, "task_id",
// "attempt"}. Answer: 2xx is success unless it carries "success"/"ok": false or an
// "error"; every other top-level member (the old runner's embeddings, latency_ms,
// metadata) and the members of "result" become the task's result (JSON text for
// non-strings). 4xx fails the task for good; 5xx and transport errors may be retried.
class HttpExecutor final : public Executor {
 public:
  explicit HttpExecutor(std::string base_url) : base_url_(std::move(base_url)) {}
  std::string kind() const override { return "http"; }
  void setUrl(std::string base_url);
  Status validate(const Payload& payload) const override;
  ExecOutcome execute(const ExecRequest& req, std::stop_token cancel) override;
  // "URL: reachable", "URL: not contacted yet" or "URL: runner unreachable ...", from
  // the last call (a runner has no health route of its own in the old API).
  std::string health() const;
  bool unreachable() const;

 private:
  std::string url() const;
  void noteReachable(bool reachable, const std::string& why);

  mutable std::mutex mu_;
  std::string base_url_;
  std::string reach_ = "not contacted yet";
};

}  // namespace dspy::orchestrator
