// Keeping services running: Docker's events tell of exits, the health monitor of
// failing probes; the service's restart policy decides, with backoff and a crash-loop stop.
#include "env_manager/lifecycle/Lifecycle.h"

#include <algorithm>
#include <spdlog/spdlog.h>

#include "common/Text.h"
#include "env_manager/lifecycle/ServiceRuntime.h"

namespace dspy::envmanager {

using namespace std::chrono_literals;

void Lifecycle::watchEvents(std::stop_token stop) {
  Backoff backoff(BackoffPolicy{.initial = 200ms, .max = 10s, .multiplier = 2.0, .jitter = 0.2});
  bool first = true;
  while (!stop.stop_requested()) {
    auto ping = docker_.ping();
    if (!ping) {
      if (docker_up_.exchange(false)) spdlog::error("docker is unreachable: {}", ping.error());
      clock_.sleepFor(backoff.next(), stop);
      continue;
    }
    if (!docker_up_.exchange(true) || first) {
      if (!first) spdlog::info("docker is reachable again; reconciling containers");
      reconcile();
    }
    first = false;
    backoff.reset();
    Status s = docker_.streamEvents(
        {{kLabelProject, stack_.project}}, [this](const docker::Event& e) { onDockerEvent(e); },
        stop);
    if (stop.stop_requested()) break;
    if (docker_up_.exchange(false)) spdlog::error("docker event stream ended: {}", s.ok() ? "closed" : s.error());
    clock_.sleepFor(backoff.next(), stop);
  }
}

void Lifecycle::onDockerEvent(const docker::Event& e) {
  if (e.type != "container" || (e.action != "die" && e.action != "oom")) return;
  auto svc = e.attributes.find(kLabelService);
  if (svc == e.attributes.end() || !graph_.contains(svc->second)) return;
  if (e.action == "oom") {
    spdlog::warn("{}: container {} ran out of memory", svc->second, e.id.substr(0, 12));
    return;  // the die event that follows carries the exit
  }
  int code = 0;
  if (auto c = e.attributes.find("exitCode"); c != e.attributes.end()) {
    code = static_cast<int>(parseInt(c->second, INT32_MIN, INT32_MAX).value_or(-1));
  }
  onContainerExit(svc->second, e.id, code, false);
}

void Lifecycle::waitForRestarts() {
  // Restarts may schedule further restarts; wait until none is left.
  while (true) {
    std::vector<std::jthread> pending;
    {
      std::lock_guard guard(restart_mu_);
      pending.swap(restarters_);
    }
    if (pending.empty()) return;
    pending.clear();  // joins
  }
}

void Lifecycle::onContainerExit(const std::string& name, const std::string& id, int exit_code, bool oom) {
  if (!oom) {
    auto info = docker_.inspectContainer(id);
    if (info) oom = info.value().oom_killed;
  }
  const ServiceSpec& spec = *stack_.find(name);
  std::string reason = oom ? "killed: out of memory" : "exited with code " + std::to_string(exit_code);
  const auto policy = spec.restart.policy;
  const bool failure = oom || exit_code != 0;
  const bool no_restart = policy == RestartSpec::Policy::No || (policy == RestartSpec::Policy::OnFailure && !failure);
  {
    std::lock_guard lock(mu_);
    auto& r = rt(name);
    // Not the current container, an exit we caused, or a start that watches itself.
    if (r.container_id != id || !r.want_running || r.phase != Phase::Idle) return;
    // One step: a dependent waiting for service_completed_successfully must never see
    // a clean exit as "exited" on its way to "completed".
    setState(name, no_restart && !failure ? ServiceState::Completed : ServiceState::Exited, reason);
    r.health.clear();
  }
  monitor_.unwatch(name);
  monitor_.reportExit(name, id, "container " + reason);
  if (failure) spdlog::warn("{}: container {} {}", name, id.substr(0, 12), reason);
  else spdlog::info("{}: container {} {}", name, id.substr(0, 12), reason);
  if (no_restart) return;
  scheduleRestart(name, reason);
}

void Lifecycle::scheduleRestart(const std::string& name, const std::string& reason) {
  const ServiceSpec& spec = *stack_.find(name);
  std::chrono::milliseconds delay{};
  int attempt = 0;
  {
    std::lock_guard lock(mu_);
    auto& r = rt(name);
    if (r.restart_pending || !r.want_running || background_.stop_requested()) return;
    if (clock_.monotonicTime() - r.last_started >= spec.restart.reset_after) {
      r.backoff.reset();
      r.restarts_in_row = 0;
    }
    if (r.restarts_in_row >= spec.restart.max_restarts) {
      setState(name, ServiceState::CrashLoop,
               "gave up after " + std::to_string(r.restarts_in_row) + " restarts in a row; last: " + reason);
      spdlog::error("{}: crash loop, not restarting again ({})", name, reason);
      if (observer_.on_restart) observer_.on_restart(name, "crash_loop");
      return;
    }
    ++r.restarts_in_row;
    ++r.restarts_total;
    attempt = r.restarts_in_row;
    r.restart_pending = true;
    delay = r.backoff.next();
    setState(name, ServiceState::Restarting, "restart " + std::to_string(attempt) + " in " + formatSeconds(delay) + ": " + reason);
  }
  if (observer_.on_restart) observer_.on_restart(name, reason.rfind("unhealthy", 0) == 0 ? "unhealthy" : "exited");
  spdlog::info("{}: restart {} in {} ({})", name, attempt, formatSeconds(delay), reason);
  std::lock_guard restart_lock(restart_mu_);
  restarters_.erase(std::remove_if(restarters_.begin(), restarters_.end(),
                                   [](std::jthread& t) { return !t.joinable(); }),
                    restarters_.end());
  auto stop = background_.get_token();
  restarters_.emplace_back([this, name, delay, reason, stop] {
    const bool waited = clock_.sleepFor(delay, stop);
    std::string id;
    {
      std::lock_guard lock(mu_);
      auto& r = rt(name);
      r.restart_pending = false;
      if (!waited || !r.want_running || r.phase != Phase::Idle) return;
      r.phase = Phase::Starting;
      r.pending_since_ms = wallMillis(clock_);
      id = r.container_id;
    }
    const ServiceSpec& svc = *stack_.find(name);
    if (reason.rfind("unhealthy", 0) == 0 && !id.empty()) {
      (void)docker_.stopContainer(id, static_cast<int>(svc.stop_grace_period.count()));
    }
    auto quiet = [](const LifecycleUpdate&) {};
    Status up = Error{"env-manager is shutting down", ErrorKind::Unavailable};
    walk_.withSlot([&] { up = ensureContainer(svc, quiet, stop); }, stop);
    const ServiceState result = up.ok() ? waitHealthy(svc, quiet, stop) : ServiceState::Failed;
    bool retry = false;
    {
      std::lock_guard lock(mu_);
      auto& r = rt(name);
      r.phase = Phase::Idle;
      if (!up.ok()) setState(name, ServiceState::Failed, "restart failed: " + up.error());
      retry = !isUp(result) && r.want_running;
      changed_.notify_all();
    }
    if (retry) scheduleRestart(name, "restart did not come up: " + std::string(envmanager::name(result)));
  });
}

void Lifecycle::onProbe(const ProbeReport& p) {
  if (!p.running) return;  // exits are Docker events' business
  if (observer_.on_probe) observer_.on_probe(p.service, p.healthy, p.seconds);
  const ServiceSpec& spec = *stack_.find(p.service);
  bool restart = false;
  {
    std::lock_guard lock(mu_);
    auto& r = rt(p.service);
    // A start judges its own probes; a report about an older container is stale.
    if (r.container_id != p.container_id || r.phase != Phase::Idle || !r.want_running) return;
    r.health["kind"] = toString(spec.healthcheck.kind);
    r.health["message"] = p.message;
    r.health["checked_at"] = std::to_string(p.checked_at);
    if (p.healthy) {
      r.consecutive_failures = 0;
      r.health["status"] = "healthy";
      if (!isUp(r.status)) {
        setState(p.service,
                 spec.healthcheck.kind == HealthCheckSpec::Kind::None ? ServiceState::Running : ServiceState::Healthy,
                 p.message);
      }
      return;
    }
    if (clock_.monotonicTime() - r.last_started < spec.healthcheck.start_period) return;  // grace after a start
    ++r.consecutive_failures;
    if (p.decided) r.consecutive_failures = std::max(r.consecutive_failures, spec.healthcheck.retries);
    r.health["status"] = "failing";
    if (r.consecutive_failures >= spec.healthcheck.retries && r.status != ServiceState::Unhealthy) {
      setState(p.service, ServiceState::Unhealthy,
               std::to_string(r.consecutive_failures) + " failed probes in a row; last: " + p.message);
      restart = spec.restart.on_unhealthy && spec.restart.policy != RestartSpec::Policy::No;
    }
  }
  if (restart) scheduleRestart(p.service, "unhealthy: " + p.message);
}

}  // namespace dspy::envmanager
