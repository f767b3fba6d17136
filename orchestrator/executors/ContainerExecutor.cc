// The container executor.
#include "orchestrator/executors/ContainerExecutor.h"

namespace dspy::orchestrator {

Status ContainerExecutor::validate(const Payload& payload) const {
  if (!payload.count("command")) {
    return Error{"payload needs \"command\": the name of a command in env-manager's tasks.commands",
                 ErrorKind::InvalidArgument};
  }
  return Status::Ok();
}

ExecOutcome ContainerExecutor::execute(const ExecRequest& req, std::stop_token cancel) {
  auto r = client_.executeTask(req.task_id, workload_class_, req.payload, req.timeout, cancel);
  if (!r) {
    const bool retryable = r.kind() == ErrorKind::Unavailable || r.kind() == ErrorKind::Timeout;
    return ExecOutcome::failure(r.error(), retryable && !cancel.stop_requested());
  }
  ExecOutcome o;
  o.success = r.value().success;
  o.result = std::move(r.value().result);
  o.error = r.value().error;
  return o;
}

}  // namespace dspy::orchestrator
