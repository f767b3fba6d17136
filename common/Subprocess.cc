#include "common/Subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

extern char** environ;

namespace dspy {
namespace {

struct Tail {
  std::size_t cap;
  std::string& data;
  bool& truncated;
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

std::string lastLine(const std::string& s) {
  std::size_t end = s.find_last_not_of("\n\r \t");
  if (end == std::string::npos) return {};
  const std::size_t start = s.rfind('\n', end);
  return s.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
}

}  // namespace

std::string SubprocessResult::describe() const {
  if (!spawn_error.empty()) return spawn_error;
  std::string what;
  if (cancelled) {
    what = "cancelled";
  } else if (timed_out) {
    what = "timed out after " + std::to_string(duration.count()) + " ms";
  } else if (signal != 0) {
    what = "killed by signal " + std::to_string(signal);
  } else {
    what = "exit code " + std::to_string(exit_code);
  }
  std::string detail = lastLine(err);
  if (detail.empty()) detail = lastLine(out);
  return detail.empty() ? what : what + ": " + detail;
}

SubprocessResult runSubprocess(const SubprocessSpec& spec, std::stop_token cancel) {
  SubprocessResult r;
  if (spec.argv.empty()) {
    r.spawn_error = "no command given";
    return r;
  }
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    r.spawn_error = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    r.spawn_error = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  Fd out_r{out_pipe[0]}, err_r{err_pipe[0]};
  Fd out_w{out_pipe[1]}, err_w{err_pipe[1]};

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.fd, 2);
  if (!spec.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, spec.cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  // The daemons block their signals for the signal thread; the child must not inherit that.
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  if (spec.env) {
    for (const auto& e : *spec.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }

  const auto started = std::chrono::steady_clock::now();
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), spec.env ? envp.data() : environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    r.spawn_error = "cannot start '" + spec.argv[0] + "'" + (spec.cwd.empty() ? "" : " in " + spec.cwd) + ": " +
                    std::strerror(rc);
    return r;
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

  Tail out{spec.tail_bytes, r.out, r.truncated}, err{spec.tail_bytes, r.err, r.truncated};
  const auto deadline = started + spec.timeout;
  bool killed = false, out_open = true, err_open = true;
  char buf[8192];
  while (out_open || err_open) {
    if (!killed && (r.timed_out || r.cancelled)) {
      ::kill(-pid, SIGKILL);
      killed = true;
    }
    int wait_ms = -1;
    if (!killed) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        r.timed_out = true;
        continue;
      }
      wait_ms = static_cast<int>(std::min<std::int64_t>(left.count() + 1, 1'000'000));
    }
    pollfd fds[3] = {{out_open ? out_r.fd : -1, POLLIN, 0}, {err_open ? err_r.fd : -1, POLLIN, 0}, {wake.fd, POLLIN, 0}};
    const int n = ::poll(fds, 3, wait_ms);
    if (n < 0 && errno != EINTR) break;
    if (fds[2].revents & POLLIN) r.cancelled = true;
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
  r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  if (WIFEXITED(wstatus)) r.exit_code = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) r.signal = WTERMSIG(wstatus);
  return r;
}

}  // namespace dspy
