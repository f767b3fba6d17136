// Runs local commands for the `process` executor.
#include "orchestrator/executors/ProcessExecutor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <regex>

extern char** environ;

namespace dspy::orchestrator {
namespace {

// Keeps the last `cap` bytes written to it.
struct Tail {
  std::size_t cap;
  std::string data;
  bool truncated = false;
  void add(const char* p, std::size_t n) {
    data.append(p, n);
    if (data.size() > cap) {
      data.erase(0, data.size() - cap);
      truncated = true;
    }
  }
};

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

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
  const Plan& p = planned.value();

  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return ExecOutcome::failure(std::string("pipe: ") + std::strerror(errno), true);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return ExecOutcome::failure(std::string("pipe: ") + std::strerror(errno), true);
  }
  Fd out_r{out_pipe[0]}, err_r{err_pipe[0]};
  Fd out_w{out_pipe[1]}, err_w{err_pipe[1]};

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.fd, 2);
  if (!p.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, p.cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  // The daemon blocks its signals for the signal thread; the child must not inherit that.
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv, envp;
  for (const auto& a : p.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : p.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  const auto started = std::chrono::steady_clock::now();
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return ExecOutcome::failure("cannot start '" + p.argv[0] + "'" + (p.cwd.empty() ? "" : " in " + p.cwd) + ": " +
                                    std::strerror(rc),
                                false);
  }
  ::close(out_w.fd);
  ::close(err_w.fd);
  out_w.fd = err_w.fd = -1;

  // Cancellation wakes the poll below through an eventfd: no polling loop.
  Fd wake{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  std::stop_callback on_cancel(cancel, [&wake] {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake.fd, &one, sizeof one);
  });

  Tail out{static_cast<std::size_t>(cfg->output_tail_bytes)}, err{static_cast<std::size_t>(cfg->output_tail_bytes)};
  const auto deadline = started + req.timeout;
  bool timed_out = false, cancelled = false, killed = false;
  bool out_open = true, err_open = true;
  char buf[8192];
  while (out_open || err_open) {
    if (!killed && (timed_out || cancelled)) {
      ::kill(-pid, SIGKILL);
      killed = true;
    }
    int wait_ms = -1;
    if (!killed) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        timed_out = true;
        continue;
      }
      wait_ms = static_cast<int>(std::min<std::int64_t>(left.count() + 1, 1'000'000));
    }
    pollfd fds[3] = {{out_open ? out_r.fd : -1, POLLIN, 0}, {err_open ? err_r.fd : -1, POLLIN, 0}, {wake.fd, POLLIN, 0}};
    const int n = ::poll(fds, 3, wait_ms);
    if (n < 0 && errno != EINTR) break;
    if (fds[2].revents & POLLIN) cancelled = true;
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        (i == 0 ? out : err).add(buf, static_cast<std::size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        (i == 0 ? out_open : err_open) = false;
      }
    }
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  // Whatever the command left behind in its group goes too.
  ::kill(-pid, SIGKILL);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();

  ExecOutcome o;
  o.result["stdout"] = out.data;
  o.result["stderr"] = err.data;
  if (out.truncated || err.truncated) o.result["output_truncated"] = "true";
  o.result["duration_ms"] = std::to_string(static_cast<std::int64_t>(ms));
  if (WIFEXITED(wstatus)) o.result["exit_code"] = std::to_string(WEXITSTATUS(wstatus));
  if (WIFSIGNALED(wstatus)) o.result["signal"] = std::to_string(WTERMSIG(wstatus));
  if (cancelled) {
    o.error = "cancelled; the process group was killed";
    o.retryable = false;
  } else if (timed_out) {
    o.error = "timed out after " + std::to_string(req.timeout.count()) + " ms; the process group was killed";
  } else if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
    o.success = true;
  } else if (WIFEXITED(wstatus)) {
    o.error = "exit code " + std::to_string(WEXITSTATUS(wstatus));
  } else {
    o.error = "killed by signal " + std::to_string(WTERMSIG(wstatus));
  }
  return o;
}

}  // namespace dspy::orchestrator
