// ProcessExecutor: runs a command from the configured set of named commands (or, only
// when config allows it, any argv from the payload) in its own process group, with a
// working directory, environment, a timeout that kills the whole group, and the exit
// code and output tails in the result.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "orchestrator/executors/Executor.h"

namespace dspy::orchestrator {

struct ProcessCommand {
  std::vector<std::string> argv;
  bool allow_args = false;  // may the payload's "args" be appended?
  std::string cwd;
  std::map<std::string, std::string> env;
};

struct ProcessExecutorConfig {
  std::map<std::string, ProcessCommand> commands;
  bool allow_arbitrary = false;  // payload "argv" runs anything: off unless trusted
  std::string work_dir;          // default cwd
  int output_tail_bytes = 4096;
};

class ProcessExecutor final : public Executor {
 public:
  explicit ProcessExecutor(ProcessExecutorConfig cfg)
      : cfg_(std::make_shared<const ProcessExecutorConfig>(std::move(cfg))) {}
  // Swaps the allowlist and settings (SIGHUP); attempts already running keep theirs.
  void setConfig(ProcessExecutorConfig cfg);
  std::string kind() const override { return "process"; }
  Status validate(const Payload& payload) const override;
  ExecOutcome execute(const ExecRequest& req, std::stop_token cancel) override;

 private:
  struct Plan {
    std::vector<std::string> argv;
    std::string cwd;
    std::vector<std::string> env;
  };
  Result<Plan> plan(const ProcessExecutorConfig& cfg, const Payload& payload, const ExecRequest* req) const;
  std::shared_ptr<const ProcessExecutorConfig> config() const;

  mutable std::mutex mu_;
  std::shared_ptr<const ProcessExecutorConfig> cfg_;
};

}  // namespace dspy::orchestrator
