// Lifecycle, the coordinator: what a start, a stop and a restart of services do, walked
// over the dependency graph by DependencyWalk; the state table the API reads. The steps
// live beside it: ServiceStart.cc (one service up), Restarts.cc (exits, unhealthy
// services, restart policy), Adoption.cc (containers found again after a restart);
// health results come from HealthMonitor.
#include "env_manager/lifecycle/Lifecycle.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "env_manager/lifecycle/ServiceRuntime.h"

namespace dspy::envmanager {

using namespace std::chrono_literals;

Lifecycle::Lifecycle(ServicesFile stack, docker::DockerApi& docker, HealthProber& prober, Clock& clock, Options options,
                     LifecycleObserver observer)
    : stack_(std::move(stack)),
      graph_(stack_),
      docker_(docker),
      prober_(prober),
      clock_(clock),
      options_(options),
      observer_(std::move(observer)),
      walk_(graph_, options.max_concurrent),
      monitor_(stack_, docker_, prober_, clock_, options.monitor_tick) {
  for (const auto& s : stack_.services) {
    auto r = std::make_unique<Runtime>();
    r->spec = &s;
    r->backoff = Backoff(BackoffPolicy{.initial = s.restart.backoff_initial, .max = s.restart.backoff_max,
                                       .multiplier = 2.0, .jitter = 0.2});
    runtimes_[s.name] = std::move(r);
  }
  health_subscription_ = monitor_.subscribe([this](const ProbeReport& report) { onProbe(report); });
}

Lifecycle::~Lifecycle() { shutdown(); }

Lifecycle::Runtime& Lifecycle::rt(const std::string& name) { return *runtimes_.at(name); }
const Lifecycle::Runtime& Lifecycle::rt(const std::string& name) const { return *runtimes_.at(name); }

void Lifecycle::setState(const std::string& name, ServiceState status, const std::string& message) {
  auto& r = rt(name);
  r.status = status;
  r.message = message;
  changed_.notify_all();
}

void Lifecycle::run() {
  adopt();
  auto token = background_.get_token();
  threads_.emplace_back([this, token] { watchEvents(token); });
  monitor_.run();
}

void Lifecycle::shutdown() {
  background_.request_stop();
  changed_.notify_all();
  monitor_.shutdown();
  threads_.clear();  // joins
  // Join outside the lock: a finishing restart thread may take it to schedule another.
  waitForRestarts();
}

std::string Lifecycle::containerOf(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = runtimes_.find(name);
  return it == runtimes_.end() ? "" : it->second->container_id;
}

int Lifecycle::activeServices() const {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& [name, r] : runtimes_) n += isUp(r->status) ? 1 : 0;
  return n;
}

bool Lifecycle::dependencySatisfied(const DependencySpec& dep, std::string* reason) const {
  const auto& d = rt(dep.service);
  if (isDead(d.status)) {
    *reason = "dependency " + dep.service + " is " + std::string(name(d.status)) +
              (d.message.empty() ? "" : ": " + d.message);
    return false;
  }
  switch (dep.condition) {
    case DependencySpec::Condition::Started:
      return isStarted(d.status) && d.phase != Phase::Stopping;
    case DependencySpec::Condition::Healthy:
      return isUp(d.status) && d.phase != Phase::Stopping;
    case DependencySpec::Condition::CompletedSuccessfully:
      if (d.status == ServiceState::Completed) return true;
      if (d.status == ServiceState::Exited) *reason = "dependency " + dep.service + " did not complete successfully: " + d.message;
      return false;
  }
  return false;
}

// ---------------------------------------------------------------------------- start

Result<StartOutcome> Lifecycle::start(const std::vector<std::string>& names,
                                      const std::function<void(const LifecycleUpdate&)>& on_update,
                                      std::stop_token stop) {
  auto closure = graph_.startClosure(names);
  if (!closure) return closure.fullError();
  std::mutex emit_mu;
  auto emit = [&](const LifecycleUpdate& u) {
    std::lock_guard lock(emit_mu);
    if (on_update) on_update(u);
  };
  std::map<std::string, ServiceState> results;
  std::mutex results_mu;
  walk_.run(
      closure.value(), DependencyWalk::Order::DependenciesFirst,
      [&](const std::string& name, DependencyWalk::Step& step) {
        const ServiceState final_status = startOne(name, emit, stop, step);
        std::lock_guard lock(results_mu);
        results[name] = final_status;
      },
      stop);
  StartOutcome out;
  out.results = results;
  out.success = true;
  int up = 0;
  std::string failed;
  for (const auto& [name, st] : results) {
    if (isUp(st) || st == ServiceState::Completed) {
      ++up;
    } else if (stack_.find(name)->required) {
      out.success = false;
      failed += (failed.empty() ? "" : ", ") + name + " " + std::string(envmanager::name(st));
    }
  }
  std::string summary = std::to_string(up) + "/" + std::to_string(results.size()) + " services up";
  if (!failed.empty()) summary += "; required services not up: " + failed;
  emit({"", out.success ? "completed" : "failed", summary, 100});
  return out;
}

// ---------------------------------------------------------------------------- stop

Result<std::map<std::string, std::string>> Lifecycle::stop(const std::vector<std::string>& names, int timeout_seconds) {
  auto closure = graph_.stopClosure(names);
  if (!closure) return closure.fullError();
  std::map<std::string, std::string> results;
  {
    // Exits from here on are expected: no restart policy applies to them.
    std::lock_guard lock(mu_);
    for (const auto& name : closure.value()) rt(name).want_running = false;
  }
  walk_.run(closure.value(), DependencyWalk::Order::DependentsFirst,
            [&](const std::string& name, DependencyWalk::Step&) {
              const ServiceSpec& spec = *stack_.find(name);
              std::string id;
              {
                std::unique_lock lock(mu_);
                auto& r = rt(name);
                r.want_running = false;
                changed_.wait(lock, [&] { return r.phase == Phase::Idle; });  // an ongoing start ends first
                const bool down = isDown(r.status);
                r.phase = Phase::Stopping;
                id = down ? "" : r.container_id;
                setState(name, ServiceState::Stopping, "stopping");
              }
              monitor_.unwatch(name);
              std::string result;
              bool ok = true;
              if (id.empty()) {
                result = "not running";
              } else {
                const int grace =
                    timeout_seconds > 0 ? timeout_seconds : static_cast<int>(spec.stop_grace_period.count());
                walk_.withSlot([&] {
                  Status s = docker_.stopContainer(id, grace);
                  ok = s.ok() || s.kind() == ErrorKind::NotFound;
                  result = ok ? "stopped" : "stop failed: " + s.error();
                });
              }
              if (observer_.on_stop) observer_.on_stop(name, ok ? "success" : "failure");
              std::lock_guard lock(mu_);
              auto& r = rt(name);
              r.phase = Phase::Idle;
              r.health.clear();
              setState(name, ok ? ServiceState::Stopped : ServiceState::Failed, result);
              results[name] = result;
            });
  return results;
}

Result<std::string> Lifecycle::restart(const std::string& name, int timeout_seconds) {
  if (!graph_.contains(name)) return Error{"unknown service: " + name, ErrorKind::NotFound};
  const ServiceSpec& spec = *stack_.find(name);
  std::string id;
  {
    std::unique_lock lock(mu_);
    auto& r = rt(name);
    changed_.wait(lock, [&] { return r.phase == Phase::Idle; });
    r.want_running = false;
    r.phase = Phase::Stopping;
    id = r.container_id;
    setState(name, ServiceState::Stopping, "restarting");
  }
  monitor_.unwatch(name);
  if (!id.empty()) {
    const int grace = timeout_seconds > 0 ? timeout_seconds : static_cast<int>(spec.stop_grace_period.count());
    Status s = Status::Ok();
    walk_.withSlot([&] { s = docker_.stopContainer(id, grace); });
    if (!s.ok() && s.kind() != ErrorKind::NotFound) {
      std::lock_guard lock(mu_);
      rt(name).phase = Phase::Idle;
      setState(name, ServiceState::Failed, "stop failed: " + s.error());
      return Error{"restart " + name + ": " + s.error(), s.kind()};
    }
  }
  {
    std::lock_guard lock(mu_);
    rt(name).phase = Phase::Idle;
    setState(name, ServiceState::Stopped, "restarting");
  }
  if (observer_.on_restart) observer_.on_restart(name, "requested");
  auto outcome = start({name}, nullptr);
  if (!outcome) return outcome.fullError();
  const ServiceState st = outcome.value().results[name];
  if (!isUp(st)) {
    std::lock_guard lock(mu_);
    return Error{"restart " + name + ": " + std::string(envmanager::name(st)) + ": " + rt(name).message,
                 ErrorKind::FailedPrecondition};
  }
  return name + " restarted: " + std::string(envmanager::name(st));
}

// ---------------------------------------------------------------------------- status

std::vector<ServiceView> Lifecycle::status(const std::vector<std::string>& names) const {
  std::vector<ServiceView> out;
  std::lock_guard lock(mu_);
  for (const auto& s : stack_.services) {
    if (!names.empty() && std::find(names.begin(), names.end(), s.name) == names.end()) continue;
    const auto& r = rt(s.name);
    ServiceView v;
    v.name = s.name;
    v.status = r.status;
    v.message = r.message;
    v.container_id = r.container_id;
    for (const auto& p : s.ports) {
      if (p.host_port > 0) v.ports.push_back(p.host_port);
    }
    v.health = r.health;
    if (!v.health.empty()) v.health["consecutive_failures"] = std::to_string(r.consecutive_failures);
    v.started_at = r.started_at;
    v.restarts = r.restarts_total;
    v.required = s.required;
    v.timeline = r.timeline;
    out.push_back(std::move(v));
  }
  return out;
}

// ---------------------------------------------------------------------------- adoption

}  // namespace dspy::envmanager
