// Test support: child processes (the real daemons) with a deadline on every wait, and
// free loopback ports.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace dspy::test {

class ChildProcess {
 public:
  // Starts `argv[0]` with `argv`; stdout and stderr go to `log_file`. `env` entries are
  // added to (or replace those of) the test's own environment.
  ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env, std::string log_file);
  ~ChildProcess();  // SIGKILLs a child still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig) const;
  bool running();
  // Waits for exit; nullopt if still running at the deadline. Exit code, or 128+signal.
  std::optional<int> waitExit(std::chrono::milliseconds timeout);
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string log_file_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int freePort();

// Polls `condition` every 10 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// A fresh temporary directory (removed by the OS's tmp cleanup, not by the test).
std::string tempDir();
void writeFile(const std::string& path, const std::string& content);

// Path of a built binary, from the DSPY_BUILD_DIR the CTest registration passes.
std::string binary(const std::string& relative);

}  // namespace dspy::test
