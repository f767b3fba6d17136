// Runs local commands for the `process` executor.
#include "orchestrator/executors/ProcessExecutor.h"

#include <regex>

#include "common/Subprocess.h"

namespace dspy::orchestrator {

void ProcessExecutor::setConfig(ProcessExecutorConfig cfg) {
  auto next = std::make_shared<const ProcessExecutorConfig>(std::move(cfg));
  std::lock_guard lock(mu_);
  cfg_ = std::move(next);
}

std::shared_ptr<const ProcessExecutorConfig> ProcessExecutor::config() const {
  std::lock_guard lock(mu_);
  return cfg_;
}

Result<ProcessExecutor::Plan> ProcessExecutor::plan(const ProcessExecutorConfig& cfg, const Payload& payload,
                                                    const ExecRequest* req) const {
  Plan p;
  auto args = payloadStringList(payload, "args");
  if (!args) return args.fullError();
  auto cmd = payload.find("command");
  if (cmd != payload.end()) {
    auto it = cfg.commands.find(cmd->second);
    if (it == cfg.commands.end()) {
      std::string known;
      for (const auto& [k, v] : cfg.commands) known += (known.empty() ? "" : ", ") + k;
      return Error{"command '" + cmd->second + "' is not one of the configured commands (" +
                       (known.empty() ? "none configured" : known) + ")",
                   ErrorKind::InvalidArgument};
    }
    if (!args.value().empty() && !it->second.allow_args) {
      return Error{"command '" + cmd->second + "' takes no args (allow_args is off)", ErrorKind::InvalidArgument};
    }
    p.argv = it->second.argv;
    p.cwd = it->second.cwd;
    for (const auto& [k, v] : it->second.env) p.env.push_back(k + "=" + v);
  } else if (payload.count("argv")) {
    if (!cfg.allow_arbitrary) {
      return Error{"payload 'argv' needs executors.process.allow_arbitrary: true; name a configured command instead",
                   ErrorKind::InvalidArgument};
    }
    auto argv = payloadStringList(payload, "argv");
    if (!argv) return argv.fullError();
    if (argv.value().empty()) return Error{"argv must not be empty", ErrorKind::InvalidArgument};
    p.argv = argv.value();
  } else {
    return Error{"payload needs \"command\": the name of a configured command", ErrorKind::InvalidArgument};
  }
  p.argv.insert(p.argv.end(), args.value().begin(), args.value().end());
  if (p.cwd.empty()) p.cwd = cfg.work_dir;
  static const std::regex kEnvName("[A-Za-z_][A-Za-z0-9_]*");
  for (const auto& [k, v] : payload) {
    if (k.rfind("env.", 0) != 0) continue;
    const std::string name = k.substr(4);
    if (!std::regex_match(name, kEnvName)) {
      return Error{"bad environment variable name '" + name + "'", ErrorKind::InvalidArgument};
    }
    p.env.push_back(name + "=" + v);
  }
  if (req != nullptr) {
    p.env.push_back("TASK_ID=" + req->task_id);
    p.env.push_back("TASK_CLASS=" + req->cls);
    p.env.push_back("TASK_ATTEMPT=" + std::to_string(req->attempt));
  }
  // A small base environment: PATH and HOME of the daemon, nothing else leaks in.
  for (const char* name : {"PATH", "HOME", "LANG"}) {
    if (const char* v = std::getenv(name)) p.env.push_back(std::string(name) + "=" + v);
  }
  return p;
}

Status ProcessExecutor::validate(const Payload& payload) const {
  auto p = plan(*config(), payload, nullptr);
  if (!p) return p.fullError();
  return Status::Ok();
}

ExecOutcome ProcessExecutor::execute(const ExecRequest& req, std::stop_token cancel) {
  const auto cfg = config();
  auto planned = plan(*cfg, req.payload, &req);
  if (!planned) return ExecOutcome::failure(planned.error(), false);
  Plan& p = planned.value();
  SubprocessSpec spec;
  spec.argv = std::move(p.argv);
  spec.cwd = std::move(p.cwd);
  spec.env = std::move(p.env);
  spec.timeout = req.timeout;
  spec.tail_bytes = static_cast<std::size_t>(cfg->output_tail_bytes);
  const SubprocessResult r = runSubprocess(spec, cancel);
  if (!r.spawn_error.empty()) return ExecOutcome::failure(r.spawn_error, false);

  ExecOutcome o;
  o.result["stdout"] = r.out;
  o.result["stderr"] = r.err;
  if (r.truncated) o.result["output_truncated"] = "true";
  o.result["duration_ms"] = std::to_string(r.duration.count());
  if (r.exit_code >= 0) o.result["exit_code"] = std::to_string(r.exit_code);
  if (r.signal != 0) o.result["signal"] = std::to_string(r.signal);
  if (r.cancelled) {
    o.error = "cancelled; the process group was killed";
    o.retryable = false;
  } else if (r.timed_out) {
    o.error = "timed out after " + std::to_string(req.timeout.count()) + " ms; the process group was killed";
  } else if (r.exit_code == 0) {
    o.success = true;
  } else if (r.exit_code > 0) {
    o.error = "exit code " + std::to_string(r.exit_code);
  } else {
    o.error = "killed by signal " + std::to_string(r.signal);
  }
  return o;
}

}  // namespace dspy::orchestrator
