// SystemdNotifier: READY, STATUS, WATCHDOG and STOPPING messages to systemd. Without
// NOTIFY_SOCKET (not under systemd) every call does nothing.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace dspy {

class SystemdNotifier {
 public:
  SystemdNotifier() = default;
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  void ready(const std::string& status);
  void status(const std::string& status);
  void reloading();
  void stopping();
  // Pings WATCHDOG=1 at half the interval systemd asked for (WatchdogSec=), if any.
  void startWatchdog();

 private:
  void stopWatchdog();
  std::thread watchdog_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace dspy
