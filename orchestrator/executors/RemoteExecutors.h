// Executors that hand the task to another service: `container` (env-manager's
// ExecuteTask over gRPC) and `http` (POST {ENV_RUNNER_URL}/tasks/execute, the old
// runner's API).
#pragma once

#include <mutex>
#include <string>

#include "orchestrator/envmanager/EnvManagerClient.h"
#include "orchestrator/executors/Executor.h"

namespace dspy::orchestrator {

class ContainerExecutor final : public Executor {
 public:
  // `workload_class` is the env-manager class the tasks run under.
  ContainerExecutor(EnvManagerClient& client, std::string workload_class)
      : client_(client), workload_class_(std::move(workload_class)) {}
  std::string kind() const override { return "container"; }
  Status validate(const Payload& payload) const override;
  ExecOutcome execute(const ExecRequest& req, std::stop_token cancel) override;

 private:
  EnvManagerClient& client_;
  std::string workload_class_;
};

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
