// ContainerExecutor: runs a task as a container through env-manager's ExecuteTask.
#pragma once

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

}  // namespace dspy::orchestrator
