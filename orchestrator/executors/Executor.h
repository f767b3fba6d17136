// Executor: runs one attempt of a task. Each class names one executor kind in config:
// process, container (env-manager ExecuteTask), http (the old runner's API), slurm,
// noop. An executor blocks its calling thread for the attempt and returns when the
// task ended, timed out or was cancelled through `cancel`.
#pragma once

#include <chrono>
#include <memory>
#include <stop_token>
#include <string>

#include "common/Payload.h"
#include "common/Result.h"

namespace dspy::orchestrator {

struct ExecRequest {
  std::string task_id;
  std::string cls;
  Payload payload;  // payload_json already merged in
  std::chrono::milliseconds timeout{60'000};
  int attempt = 1;
};

struct ExecOutcome {
  bool success = false;
  Payload result;
  std::string error;
  // False when another attempt cannot help (bad payload, not allowed, cancelled).
  bool retryable = true;

  static ExecOutcome failure(std::string error, bool retryable) {
    ExecOutcome o;
    o.error = std::move(error);
    o.retryable = retryable;
    return o;
  }
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual std::string kind() const = 0;
  // Checks a payload at submission, so that a task that can never run is refused
  // before it is accepted. `payload` is expanded.
  virtual Status validate(const Payload& payload) const {
    (void)payload;
    return Status::Ok();
  }
  virtual ExecOutcome execute(const ExecRequest& req, std::stop_token cancel) = 0;
};

// Completes at once with an empty result, running nothing: for dry runs and for
// measuring the orchestrator's own overhead.
class NoopExecutor final : public Executor {
 public:
  std::string kind() const override { return "noop"; }
  ExecOutcome execute(const ExecRequest&, std::stop_token) override {
    ExecOutcome o;
    o.success = true;
    return o;
  }
};

// The seam the Slurm integration fills. Until it exists every task of a slurm class
// fails with a message that says so; it never reports success.
class SlurmExecutor final : public Executor {
 public:
  std::string kind() const override { return "slurm"; }
  Status validate(const Payload&) const override {
    return Error{"this orchestrator build cannot submit Slurm jobs yet (the slurm executor is not built); "
                 "use a class with the process, container or http executor",
                 ErrorKind::FailedPrecondition};
  }
  ExecOutcome execute(const ExecRequest&, std::stop_token) override {
    return ExecOutcome::failure("the slurm executor is not built in this orchestrator", false);
  }
};

}  // namespace dspy::orchestrator
