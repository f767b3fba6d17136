// Subprocess: runs one command (argv, no shell) in its own process group with its output
// captured (the last N bytes of each stream), a timeout and a cancellation token that
// kill the whole group, and stdin from /dev/null. Used by the process executor and the
// Slurm commands.
#pragma once

#include <chrono>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace dspy {

struct SubprocessSpec {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH
  std::string cwd;                // empty: the caller's
  // The child's whole environment ("K=V"); nullopt: the caller's environment.
  std::optional<std::vector<std::string>> env;
  std::chrono::milliseconds timeout{60'000};
  std::size_t tail_bytes = 1 << 20;  // kept of each of stdout and stderr
};

struct SubprocessResult {
  std::string spawn_error;  // non-empty: the command did not start
  int exit_code = -1;       // -1 unless it exited
  int signal = 0;           // the signal that ended it, if one did
  std::string out, err;
  bool truncated = false;
  bool timed_out = false;
  bool cancelled = false;
  std::chrono::milliseconds duration{0};

  bool ok() const { return spawn_error.empty() && exit_code == 0 && !timed_out && !cancelled; }
  // "exit code 3: <last line of stderr>" or why it did not run or finish.
  std::string describe() const;
};

SubprocessResult runSubprocess(const SubprocessSpec& spec, std::stop_token cancel = {});

}  // namespace dspy
