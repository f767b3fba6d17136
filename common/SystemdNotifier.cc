// sd_notify(3) wrapper with a watchdog thread.
#include "common/SystemdNotifier.h"

#include <systemd/sd-daemon.h>

#include <chrono>

namespace dspy {

SystemdNotifier::~SystemdNotifier() { stopWatchdog(); }

void SystemdNotifier::ready(const std::string& status) {
  sd_notify(0, ("READY=1\nSTATUS=" + status).c_str());
}

void SystemdNotifier::status(const std::string& status) { sd_notify(0, ("STATUS=" + status).c_str()); }

void SystemdNotifier::reloading() { sd_notify(0, "RELOADING=1"); }

void SystemdNotifier::stopping() {
  stopWatchdog();
  sd_notify(0, "STOPPING=1");
}

void SystemdNotifier::startWatchdog() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0 || watchdog_.joinable()) return;
  const auto period = std::chrono::microseconds(usec / 2);
  watchdog_ = std::thread([this, period] {
    std::unique_lock lock(mu_);
    while (!stop_) {
      sd_notify(0, "WATCHDOG=1");
      cv_.wait_for(lock, period, [this] { return stop_; });
    }
  });
}

void SystemdNotifier::stopWatchdog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
}

}  // namespace dspy
