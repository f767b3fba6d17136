// Service state names and rules.
#include "env_manager/lifecycle/ServiceState.h"

#include <array>
#include <utility>

namespace dspy::envmanager {
namespace {

constexpr std::array<std::pair<ServiceState, std::string_view>, 14> kNames{{
    {ServiceState::Stopped, "stopped"},       {ServiceState::Pending, "pending"},
    {ServiceState::Starting, "starting"},     {ServiceState::Waiting, "waiting"},
    {ServiceState::Healthy, "healthy"},       {ServiceState::Running, "running"},
    {ServiceState::Unhealthy, "unhealthy"},   {ServiceState::Restarting, "restarting"},
    {ServiceState::Stopping, "stopping"},     {ServiceState::Exited, "exited"},
    {ServiceState::Completed, "completed"},   {ServiceState::Failed, "failed"},
    {ServiceState::Blocked, "blocked"},       {ServiceState::CrashLoop, "crash_loop"},
}};

}  // namespace

std::string_view name(ServiceState s) {
  for (const auto& [state, word] : kNames) {
    if (state == s) return word;
  }
  return "unknown";
}

std::optional<ServiceState> parseServiceState(std::string_view word) {
  for (const auto& [state, w] : kNames) {
    if (w == word) return state;
  }
  return std::nullopt;
}

std::string_view wireStatus(ServiceState s) {
  switch (s) {
    case ServiceState::Healthy:
    case ServiceState::Running:
      return "running";
    case ServiceState::Pending:
    case ServiceState::Starting:
    case ServiceState::Waiting:
    case ServiceState::Restarting:
      return "starting";
    case ServiceState::Unhealthy:
      return "unhealthy";
    case ServiceState::Stopped:
    case ServiceState::Stopping:
    case ServiceState::Completed:
      return "stopped";
    case ServiceState::Exited:
    case ServiceState::Failed:
    case ServiceState::Blocked:
    case ServiceState::CrashLoop:
      return "failed";
  }
  return "failed";
}

bool isUp(ServiceState s) { return s == ServiceState::Healthy || s == ServiceState::Running; }

bool isStarted(ServiceState s) { return isUp(s) || s == ServiceState::Waiting || s == ServiceState::Unhealthy; }

bool isDead(ServiceState s) {
  return s == ServiceState::Failed || s == ServiceState::Blocked || s == ServiceState::CrashLoop;
}

bool isDown(ServiceState s) {
  return s == ServiceState::Stopped || s == ServiceState::Exited || s == ServiceState::Completed ||
         s == ServiceState::Blocked || s == ServiceState::CrashLoop;
}

}  // namespace dspy::envmanager
