// ServiceState: the one state type of a managed service, its rules (up, started, dead,
// down), and the one place where it becomes words on the wire.
#pragma once

#include <optional>
#include <string_view>

namespace dspy::envmanager {

enum class ServiceState {
  Stopped,     // no container running (never started, or stopped on request)
  Pending,     // a start waits for its dependencies
  Starting,    // creating / starting the container
  Waiting,     // container runs, health check not passed yet
  Healthy,     // container runs and passes its health check
  Running,     // container runs; the service has no health check
  Unhealthy,   // container runs and fails its health check
  Restarting,  // the restart policy will start it again after a backoff
  Stopping,    // a stop or restart is taking the container down
  Exited,      // the container ended unexpectedly
  Completed,   // a one-shot container ended with code 0
  Failed,      // a start or stop failed, or health never passed in time
  Blocked,     // a dependency failed, so it was not started
  CrashLoop,   // the restart policy gave up
};

// The internal word ("crash_loop", "healthy", ...): logs, the StartServices stream,
// health_checks["state"].
std::string_view name(ServiceState s);
std::optional<ServiceState> parseServiceState(std::string_view word);

// GetServicesStatus's ServiceStatus.status, the old clients' vocabulary:
// running (up and, where it has a check, healthy), starting, unhealthy, stopped, failed.
std::string_view wireStatus(ServiceState s);

bool isUp(ServiceState s);       // healthy, or running without a check
bool isStarted(ServiceState s);  // its container runs (for depends_on: service_started)
bool isDead(ServiceState s);     // failed, blocked or crash_loop: dependents are blocked
bool isDown(ServiceState s);     // no container to stop

}  // namespace dspy::envmanager
