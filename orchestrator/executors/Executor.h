// Executor: runs one attempt of a task. Each class names one executor kind in config:
// process, container (env-manager ExecuteTask), http (the old runner's API), slurm,
// noop. An executor blocks its calling thread for the attempt and returns when the
// task ended, timed out or was cancelled through `cancel`.
#pragma once

#include <chrono>
#include <functional>
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
  // Set by a resumable executor's detach(): the attempt goes on outside the process.
  bool detached = false;

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

  // Asynchronous executors (Slurm) hand work to something outside the process: `launch`
  // starts the attempt on the calling thread and returns; `finish` runs exactly once,
  // later, on any thread, never under the engine's lock. `cancel` asks for the work to
  // be stopped. The default runs execute() there and then.
  using Finish = std::function<void(ExecOutcome)>;
  virtual bool asynchronous() const { return false; }
  virtual void launch(const ExecRequest& req, std::stop_token cancel, Finish finish) {
    finish(execute(req, cancel));
  }
  // Resumable executors' attempts outlive the orchestrator (a Slurm job keeps running):
  // on shutdown the engine calls detach() instead of cancelling them, which finishes
  // every launched attempt with `detached` set; after a restart the same attempt is
  // launched again and the executor adopts what it left.
  virtual bool resumable() const { return false; }
  virtual void detach() {}
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

}  // namespace dspy::orchestrator
