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

// Request body: {"task_id", "class", "attempt", "payload": {...}}. Answer: 2xx with
// {"success"|"ok": bool, "result"?: {...}, "error"?: str}; 4xx fails the task for
// good, 5xx and transport errors may be retried.
class HttpExecutor final : public Executor {
 public:
  explicit HttpExecutor(std::string base_url) : base_url_(std::move(base_url)) {}
  std::string kind() const override { return "http"; }
  void setUrl(std::string base_url);
  Status validate(const Payload& payload) const override;
  ExecOutcome execute(const ExecRequest& req, std::stop_token cancel) override;

 private:
  std::string url() const;

  mutable std::mutex mu_;
  std::string base_url_;
};

}  // namespace dspy::orchestrator
