// Synchronous signal handling with sigtimedwait.
#include "common/Signals.h"

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <ctime>

namespace dspy {
namespace {
sigset_t watchedSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}
}  // namespace

SignalWatcher::SignalWatcher() {
  sigset_t set = watchedSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A client that disconnects mid-write must not kill the daemon.
  signal(SIGPIPE, SIG_IGN);
}

SignalWatcher::~SignalWatcher() = default;

std::optional<SignalAction> SignalWatcher::wait(std::chrono::milliseconds timeout) {
  sigset_t set = watchedSet();
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  ts.tv_nsec = static_cast<long>((timeout.count() % 1000) * 1'000'000);
  const int sig = sigtimedwait(&set, nullptr, &ts);
  if (sig == SIGHUP) return SignalAction::Reload;
  if (sig == SIGTERM || sig == SIGINT) return SignalAction::Stop;
  return std::nullopt;  // timeout or EINTR
}

}  // namespace dspy
