// SignalWatcher: turns SIGTERM/SIGINT (stop) and SIGHUP (reload) into calls on the main
// thread. Construct it first in main(), before any thread starts, so that every thread
// inherits the blocked mask and no signal kills the process by default action.
#pragma once

#include <chrono>
#include <optional>

namespace dspy {

enum class SignalAction { Stop, Reload };

class SignalWatcher {
 public:
  SignalWatcher();
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  // Waits up to `timeout` for a signal; nullopt when none came.
  std::optional<SignalAction> wait(std::chrono::milliseconds timeout);
};

}  // namespace dspy
