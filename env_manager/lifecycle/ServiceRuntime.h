// What the lifecycle knows of one service while it runs (internal to lifecycle/).
// Guarded by Lifecycle::mu_.
#pragma once

#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include "common/Backoff.h"
#include "common/Clock.h"
#include "env_manager/lifecycle/Lifecycle.h"

namespace dspy::envmanager {

struct Lifecycle::Runtime {
  const ServiceSpec* spec = nullptr;
  ServiceState status = ServiceState::Stopped;
  std::string message;
  std::string container_id;
  std::int64_t started_at = 0;
  std::map<std::string, std::string> health;
  int consecutive_failures = 0;
  int restarts_in_row = 0;
  int restarts_total = 0;
  Backoff backoff{BackoffPolicy{}};
  Clock::MonotonicTime last_started{};
  Phase phase = Phase::Idle;
  bool want_running = false;  // false after an explicit stop: exits are then expected
  bool restart_pending = false;
  bool recreate = false;      // the adopted container has an older definition
  std::int64_t pending_since_ms = 0;  // wall time the current start asked for it
  StartTimeline timeline;
};

inline std::int64_t wallMillis(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.systemTime().time_since_epoch()).count();
}

// "1.5s", for messages.
inline std::string formatSeconds(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

}  // namespace dspy::envmanager
