// The lifecycle engine: start walk, health, restarts, stop walk, adoption.
#include "env_manager/lifecycle/Lifecycle.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <list>

namespace dspy::envmanager {
namespace {

using namespace std::chrono_literals;


std::string seconds(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

}  // namespace

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
  Clock::MonotonicTime next_probe{};
  Phase phase = Phase::Idle;
  bool want_running = false;  // false after an explicit stop: exits are then expected
  bool restart_pending = false;
  bool recreate = false;      // the adopted container has an older definition
};

Lifecycle::Lifecycle(ServicesFile stack, docker::DockerApi& docker, HealthProber& prober, Clock& clock, Options options,
                     LifecycleObserver observer)
    : stack_(std::move(stack)),
      graph_(stack_),
      docker_(docker),
      prober_(prober),
      clock_(clock),
      options_(options),
      observer_(std::move(observer)),
      slots_(std::clamp(options.max_concurrent, 1, 1024)) {
  for (const auto& s : stack_.services) {
    auto r = std::make_unique<Runtime>();
    r->spec = &s;
    r->backoff = Backoff(BackoffPolicy{.initial = s.restart.backoff_initial, .max = s.restart.backoff_max,
                                       .multiplier = 2.0, .jitter = 0.2});
    runtimes_[s.name] = std::move(r);
  }
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
  threads_.emplace_back([this, token] { monitorHealth(token); });
}

void Lifecycle::shutdown() {
  background_.request_stop();
  changed_.notify_all();
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
  {
    std::vector<std::jthread> workers;
    for (const auto& name : graph_.topologicalOrder()) {
      if (!closure.value().count(name)) continue;
      workers.emplace_back([&, name] {
        const ServiceState final_status = startOne(name, emit, stop);
        std::lock_guard lock(results_mu);
        results[name] = final_status;
      });
    }
  }  // joins every worker
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

ServiceState Lifecycle::startOne(const std::string& name, const std::function<void(const LifecycleUpdate&)>& emit,
                                std::stop_token stop) {
  const ServiceSpec& spec = *stack_.find(name);
  {
    std::unique_lock lock(mu_);
    auto& r = rt(name);
    // Another start or stop of this service is under way: wait for its outcome.
    while (r.phase != Phase::Idle && !stop.stop_requested()) {
      if (r.phase == Phase::Starting) {
        changed_.wait(lock, stop, [&] { return r.phase == Phase::Idle; });
        if (isUp(r.status) || isDead(r.status)) {
          emit({name, std::string(envmanager::name(r.status)), r.message, isUp(r.status) ? 100 : 0});
          return r.status;
        }
      } else {
        changed_.wait(lock, stop, [&] { return r.phase == Phase::Idle; });
      }
    }
    if (stop.stop_requested()) return r.status;
    r.phase = Phase::Starting;
    r.want_running = true;
    if (!isUp(r.status)) setState(name, ServiceState::Pending, "waiting for dependencies");
  }
  auto finish = [&](std::optional<ServiceState> status, const std::string& message) {
    std::lock_guard lock(mu_);
    auto& r = rt(name);
    r.phase = Phase::Idle;
    if (status) setState(name, *status, message);
    // A start that failed stays failed: the caller hears it and may start again. Restart
    // policies apply to services that came up.
    if (isDead(r.status) || r.status == ServiceState::Exited) r.want_running = false;
    changed_.notify_all();
    return rt(name).status;
  };
  emit({name, "pending", "waiting for dependencies", 0});

  // Wait for this service's own dependencies, not for a whole level.
  {
    std::unique_lock lock(mu_);
    std::string reason;
    const bool ready = changed_.wait(lock, stop, [&] {
      for (const auto& d : spec.depends_on) {
        if (!dependencySatisfied(d, &reason)) return !reason.empty();
      }
      return true;
    });
    if (!ready) {
      lock.unlock();
      return finish(ServiceState::Stopped, "start cancelled");
    }
    if (!reason.empty()) {
      setState(name, ServiceState::Blocked, reason);
      rt(name).phase = Phase::Idle;
      changed_.notify_all();
      lock.unlock();
      emit({name, "blocked", reason, 0});
      if (observer_.on_start_failed) observer_.on_start_failed(name, "blocked");
      if (observer_.on_start) observer_.on_start(name, "blocked");
      return ServiceState::Blocked;
    }
  }

  while (!slots_.try_acquire_for(50ms)) {
    if (stop.stop_requested()) return finish(ServiceState::Stopped, "start cancelled");
  }
  Status up = ensureContainer(spec, emit, stop);
  slots_.release();
  if (!up.ok()) {
    emit({name, "failed", up.error(), 0});
    if (observer_.on_start_failed) {
      observer_.on_start_failed(name, up.kind() == ErrorKind::Unavailable ? "docker_unavailable"
                                      : up.kind() == ErrorKind::NotFound  ? "image_not_found"
                                                                           : "docker_error");
    }
    if (observer_.on_start) observer_.on_start(name, "failed");
    return finish(ServiceState::Failed, up.error());
  }
  const ServiceState result = waitHealthy(spec, emit, stop);
  if (observer_.on_start) observer_.on_start(name, isUp(result) ? "success" : std::string(envmanager::name(result)));
  if (!isUp(result) && observer_.on_start_failed) observer_.on_start_failed(name, "unhealthy");
  return finish(std::nullopt, "");
}

docker::CreateRequest Lifecycle::createRequest(const ServiceSpec& spec) const {
  docker::CreateRequest q;
  q.name = stack_.project + "-" + spec.name;
  q.image = spec.image;
  q.command = spec.command;
  q.entrypoint = spec.entrypoint;
  for (const auto& [k, v] : spec.environment) q.env.push_back(k + "=" + v);
  q.labels = spec.labels;
  q.labels[kLabelManaged] = "true";
  q.labels[kLabelProject] = stack_.project;
  q.labels[kLabelService] = spec.name;
  q.labels[kLabelHash] = spec.definitionHash(stack_.network);
  for (const auto& p : spec.ports) {
    q.ports.push_back({p.container_port, p.protocol, p.host_ip, p.host_port});
  }
  for (const auto& v : spec.volumes) q.mounts.push_back({v.source, v.target, v.bind(), v.read_only});
  q.network = stack_.network;
  q.aliases = {spec.name};
  q.cpus = spec.cpus;
  q.memory_bytes = spec.memory_bytes;
  q.gpus = spec.gpus && options_.gpus_present;
  q.stop_timeout_seconds = static_cast<int>(spec.stop_grace_period.count());
  return q;
}

Status Lifecycle::ensureContainer(const ServiceSpec& spec, const std::function<void(const LifecycleUpdate&)>& emit,
                                  std::stop_token stop) {
  const std::string& name = spec.name;
  const std::string hash = spec.definitionHash(stack_.network);
  std::string id;
  bool recreate = false;
  {
    std::lock_guard lock(mu_);
    id = rt(name).container_id;
    recreate = rt(name).recreate;
  }
  if (!id.empty()) {
    auto info = docker_.inspectContainer(id);
    if (!info && info.kind() != ErrorKind::NotFound) return info.fullError();
    if (!info) {
      id.clear();
    } else if (recreate || info.value().labels[kLabelHash] != hash) {
      emit({name, "creating", "definition changed: recreating the container", 10});
      (void)docker_.stopContainer(id, static_cast<int>(spec.stop_grace_period.count()));
      if (Status s = docker_.removeContainer(id, true); !s.ok()) return s;
      id.clear();
    } else if (info.value().running) {
      std::lock_guard lock(mu_);
      setState(name, ServiceState::Waiting, "already running");
      return Status::Ok();
    }
  }
  {
    // One at a time: parallel creations of the same network would make duplicates.
    std::lock_guard resources(resources_mu_);
    if (Status s = docker_.ensureNetwork(stack_.network, {{kLabelManaged, "true"}, {kLabelProject, stack_.project}});
        !s.ok()) {
      return s;
    }
    for (const auto& v : spec.volumes) {
      if (v.bind()) continue;
      if (Status s = docker_.ensureVolume(v.source, {{kLabelManaged, "true"}, {kLabelProject, stack_.project}});
          !s.ok()) {
        return s;
      }
    }
  }
  const bool reused = !id.empty();
  if (id.empty()) {
    // Image: pull only when it is not there yet.
    auto image = docker_.inspectImage(spec.image);
    if (!image && image.kind() != ErrorKind::NotFound) return image.fullError();
    if (!image) {
      {
        std::lock_guard lock(mu_);
        setState(name, ServiceState::Starting, "pulling " + spec.image);
      }
      emit({name, "pulling", "pulling " + spec.image, 0});
      std::map<std::string, std::pair<std::int64_t, std::int64_t>> layers;
      int last_percent = -1;
      Status pulled = docker_.pullImage(
          spec.image,
          [&](const docker::PullProgress& p) {
            if (p.layer.empty() || p.total <= 0) return;
            layers[p.layer] = {p.current, p.total};
            std::int64_t cur = 0, tot = 0;
            for (const auto& [l, ct] : layers) {
              cur += ct.first;
              tot += ct.second;
            }
            const int percent = tot > 0 ? static_cast<int>(cur * 100 / tot) : 0;
            if (percent != last_percent && (percent - last_percent >= 5 || percent == 100)) {
              last_percent = percent;
              emit({name, "pulling", p.status + " " + spec.image, percent});
            }
          },
          stop);
      if (!pulled.ok()) return Error{"pull " + spec.image + " failed: " + pulled.error(), pulled.kind()};
    }
    emit({name, "creating", "creating container " + stack_.project + "-" + name, 30});
    {
      std::lock_guard lock(mu_);
      setState(name, ServiceState::Starting, "creating the container");
    }
    const auto request = createRequest(spec);
    auto created = docker_.createContainer(request);
    if (!created && created.kind() == ErrorKind::AlreadyExists) {
      // A container with our name exists. Replace it only if it is ours.
      auto other = docker_.inspectContainer(request.name);
      if (other && other.value().labels[kLabelProject] == stack_.project) {
        (void)docker_.removeContainer(other.value().id, true);
        created = docker_.createContainer(request);
      } else {
        return Error{"a container named " + request.name + " exists that env-manager does not manage; remove or rename it",
                     ErrorKind::AlreadyExists};
      }
    }
    if (!created) return created.fullError();
    id = created.value();
    std::lock_guard lock(mu_);
    rt(name).container_id = id;
    rt(name).recreate = false;
  }
  emit({name, "starting", "starting container " + id.substr(0, 12), 50});
  {
    std::lock_guard lock(mu_);
    setState(name, ServiceState::Starting, "starting the container");
    rt(name).last_started = clock_.monotonicTime();
  }
  if (Status s = docker_.startContainer(id); !s.ok()) {
    if (!reused) return s;
    // An existing container that no longer starts (its network was replaced, ...):
    // replace it once with a fresh one.
    spdlog::warn("{}: existing container {} does not start ({}); recreating it", name, id.substr(0, 12), s.error());
    (void)docker_.removeContainer(id, true);
    {
      std::lock_guard lock(mu_);
      rt(name).container_id.clear();
    }
    return ensureContainer(spec, emit, stop);
  }
  auto info = docker_.inspectContainer(id);
  std::lock_guard lock(mu_);
  rt(name).started_at = info ? info.value().started_at : 0;
  setState(name, ServiceState::Waiting, "container started");
  return Status::Ok();
}

ServiceState Lifecycle::waitHealthy(const ServiceSpec& spec, const std::function<void(const LifecycleUpdate&)>& emit,
                                   std::stop_token stop) {
  const std::string& name = spec.name;
  std::string id;
  {
    std::lock_guard lock(mu_);
    id = rt(name).container_id;
  }
  const auto deadline = clock_.monotonicTime() + options_.health_timeout;
  auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(options_.first_probe_delay);
  int attempt = 0;
  auto last_emit = clock_.monotonicTime() - 1h;
  while (true) {
    auto info = docker_.inspectContainer(id);
    if (!info) {
      const std::string why = "cannot inspect the container: " + info.error();
      emit({name, "failed", why, 0});
      std::lock_guard lock(mu_);
      setState(name, ServiceState::Failed, why);
      return ServiceState::Failed;
    }
    if (!info.value().running) {
      const auto& c = info.value();
      const bool completed = c.exit_code == 0 && !c.oom_killed;
      std::string why = c.oom_killed ? "killed: out of memory" : "exited with code " + std::to_string(c.exit_code);
      const ServiceState status = completed ? ServiceState::Completed : ServiceState::Failed;
      if (!completed) why += " while starting";
      emit({name, std::string(envmanager::name(status)), why, completed ? 100 : 0});
      std::lock_guard lock(mu_);
      setState(name, status, why);
      return status;
    }
    if (spec.healthcheck.kind == HealthCheckSpec::Kind::None) {
      emit({name, "running", "running (no health check)", 100});
      std::lock_guard lock(mu_);
      setState(name, ServiceState::Running, "running (no health check)");
      rt(name).next_probe = clock_.monotonicTime() + spec.healthcheck.interval;
      return ServiceState::Running;
    }
    ++attempt;
    ProbeResult p = prober_.probe(spec, info.value(), stack_.network);
    if (observer_.on_probe) observer_.on_probe(name, p.healthy, p.seconds);
    {
      std::lock_guard lock(mu_);
      auto& r = rt(name);
      r.health = {{"kind", toString(spec.healthcheck.kind)}, {"status", p.healthy ? "healthy" : "starting"},
                  {"message", p.message}, {"attempts", std::to_string(attempt)},
                  {"checked_at", std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                    clock_.systemTime().time_since_epoch())
                                                    .count())}};
      if (p.healthy) {
        r.consecutive_failures = 0;
        r.next_probe = clock_.monotonicTime() + spec.healthcheck.interval;
        setState(name, ServiceState::Healthy, p.message);
      }
    }
    if (p.healthy) {
      emit({name, "healthy", p.message + " (attempt " + std::to_string(attempt) + ")", 100});
      return ServiceState::Healthy;
    }
    const auto now = clock_.monotonicTime();
    if (now - last_emit >= 1s || (attempt & (attempt - 1)) == 0) {
      last_emit = now;
      emit({name, "waiting", "waiting for health, attempt " + std::to_string(attempt) + ": " + p.message, 70});
    }
    if (now >= deadline) {
      const std::string why = "not healthy within " + seconds(options_.health_timeout) + " (" +
                              std::to_string(attempt) + " probes); last: " + p.message;
      emit({name, "failed", why, 0});
      std::lock_guard lock(mu_);
      setState(name, ServiceState::Failed, why);
      return ServiceState::Failed;
    }
    if (!clock_.sleepFor(delay, stop)) {
      std::lock_guard lock(mu_);
      setState(name, ServiceState::Waiting, "start cancelled while waiting for health");
      return ServiceState::Waiting;
    }
    delay = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(delay * 3 / 2), spec.healthcheck.interval);
  }
}

// ---------------------------------------------------------------------------- stop

Result<std::map<std::string, std::string>> Lifecycle::stop(const std::vector<std::string>& names, int timeout_seconds) {
  auto closure = graph_.stopClosure(names);
  if (!closure) return closure.fullError();
  std::map<std::string, std::string> results;
  std::set<std::string> done;
  {
    std::vector<std::jthread> workers;
    for (const auto& name : closure.value()) {
      workers.emplace_back([&, name] {
        const ServiceSpec& spec = *stack_.find(name);
        std::string id;
        {
          std::unique_lock lock(mu_);
          auto& r = rt(name);
          r.want_running = false;
          // Dependents in this stop go first; an ongoing start finishes first.
          changed_.wait(lock, [&] {
            if (r.phase != Phase::Idle) return false;
            for (const auto& d : graph_.dependents(name)) {
              if (closure.value().count(d) && !done.count(d)) return false;
            }
            return true;
          });
          const bool down = isDown(r.status);
          r.phase = Phase::Stopping;
          id = down ? "" : r.container_id;
          setState(name, ServiceState::Stopping, "stopping");
        }
        std::string result;
        bool ok = true;
        if (id.empty()) {
          result = "not running";
        } else {
          const int grace = timeout_seconds > 0 ? timeout_seconds : static_cast<int>(spec.stop_grace_period.count());
          Status s = docker_.stopContainer(id, grace);
          ok = s.ok() || s.kind() == ErrorKind::NotFound;
          result = ok ? "stopped" : "stop failed: " + s.error();
        }
        if (observer_.on_stop) observer_.on_stop(name, ok ? "success" : "failure");
        std::lock_guard lock(mu_);
        auto& r = rt(name);
        r.phase = Phase::Idle;
        r.health.clear();
        setState(name, ok ? ServiceState::Stopped : ServiceState::Failed, result);
        results[name] = result;
        done.insert(name);
        changed_.notify_all();
      });
    }
  }
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
  if (!id.empty()) {
    const int grace = timeout_seconds > 0 ? timeout_seconds : static_cast<int>(spec.stop_grace_period.count());
    Status s = docker_.stopContainer(id, grace);
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
    out.push_back(std::move(v));
  }
  return out;
}

// ---------------------------------------------------------------------------- adoption

void Lifecycle::adopt() {
  auto list = docker_.listContainers({{kLabelProject, stack_.project}}, /*all=*/true);
  if (!list) {
    docker_up_ = false;
    spdlog::warn("cannot list containers to adopt ({}); will adopt once Docker answers", list.error());
    return;
  }
  docker_up_ = true;
  std::map<std::string, std::vector<docker::ContainerSummary>> by_service;
  for (auto& c : list.value()) by_service[c.labels[kLabelService]].push_back(c);
  for (auto& [service, containers] : by_service) {
    const ServiceSpec* spec = stack_.find(service);
    if (spec == nullptr) {
      spdlog::info("leaving alone {} container(s) of service '{}', which is not in the services file",
                   containers.size(), service);
      continue;
    }
    const std::string hash = spec->definitionHash(stack_.network);
    // Keep one container: the running one with the current definition if any.
    auto score = [&](const docker::ContainerSummary& c) {
      return (c.labels.at(kLabelHash) == hash ? 2 : 0) + (c.state == "running" ? 1 : 0);
    };
    std::sort(containers.begin(), containers.end(), [&](const auto& a, const auto& b) { return score(a) > score(b); });
    for (std::size_t i = 1; i < containers.size(); ++i) {
      spdlog::warn("removing duplicate container {} of service {}", containers[i].id.substr(0, 12), service);
      (void)docker_.removeContainer(containers[i].id, true);
    }
    const auto& keep = containers.front();
    auto info = docker_.inspectContainer(keep.id);
    std::lock_guard lock(mu_);
    auto& r = rt(service);
    r.container_id = keep.id;
    r.recreate = keep.labels.at(kLabelHash) != hash;
    r.want_running = keep.state == "running";
    r.started_at = info ? info.value().started_at : 0;
    r.last_started = clock_.monotonicTime();
    r.next_probe = clock_.monotonicTime();
    if (keep.state == "running") {
      setState(service,
               spec->healthcheck.kind == HealthCheckSpec::Kind::None ? ServiceState::Running : ServiceState::Waiting,
               "adopted running container; health not checked yet");
    } else {
      setState(service, ServiceState::Stopped, "adopted stopped container");
    }
    spdlog::info("adopted container {} for {} ({}{})", keep.id.substr(0, 12), service, keep.state,
                 r.recreate ? ", older definition: recreated on next start" : "");
  }
}

// ---------------------------------------------------------------------------- watching

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
  if (auto c = e.attributes.find("exitCode"); c != e.attributes.end()) code = std::atoi(c->second.c_str());
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

void Lifecycle::reconcile() {
  std::vector<std::pair<std::string, std::string>> watched;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, r] : runtimes_) {
      if (r->want_running && r->phase == Phase::Idle && !r->container_id.empty()) {
        watched.emplace_back(name, r->container_id);
      }
    }
  }
  for (const auto& [name, id] : watched) {
    auto info = docker_.inspectContainer(id);
    if (info && info.value().running) continue;
    onContainerExit(name, id, info ? info.value().exit_code : -1, info && info.value().oom_killed);
  }
}

void Lifecycle::onContainerExit(const std::string& name, const std::string& id, int exit_code, bool oom) {
  if (!oom) {
    auto info = docker_.inspectContainer(id);
    if (info) oom = info.value().oom_killed;
  }
  const ServiceSpec& spec = *stack_.find(name);
  std::string reason = oom ? "killed: out of memory" : "exited with code " + std::to_string(exit_code);
  {
    std::lock_guard lock(mu_);
    auto& r = rt(name);
    // Not the current container, an exit we caused, or a start that watches itself.
    if (r.container_id != id || !r.want_running || r.phase != Phase::Idle) return;
    setState(name, ServiceState::Exited, reason);
    r.health.clear();
  }
  spdlog::warn("{}: container {} {}", name, id.substr(0, 12), reason);
  const auto policy = spec.restart.policy;
  const bool failure = oom || exit_code != 0;
  if (policy == RestartSpec::Policy::No || (policy == RestartSpec::Policy::OnFailure && !failure)) {
    std::lock_guard lock(mu_);
    if (!failure) setState(name, ServiceState::Completed, reason);
    return;
  }
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
    setState(name, ServiceState::Restarting, "restart " + std::to_string(attempt) + " in " + seconds(delay) + ": " + reason);
  }
  if (observer_.on_restart) observer_.on_restart(name, reason.rfind("unhealthy", 0) == 0 ? "unhealthy" : "exited");
  spdlog::info("{}: restart {} in {} ({})", name, attempt, seconds(delay), reason);
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
      id = r.container_id;
    }
    const ServiceSpec& svc = *stack_.find(name);
    if (reason.rfind("unhealthy", 0) == 0 && !id.empty()) {
      (void)docker_.stopContainer(id, static_cast<int>(svc.stop_grace_period.count()));
    }
    auto quiet = [](const LifecycleUpdate&) {};
    Status up = ensureContainer(svc, quiet, stop);
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

void Lifecycle::monitorHealth(std::stop_token stop) {
  while (clock_.sleepFor(options_.monitor_tick, stop)) probeDue();
}

int Lifecycle::probeDue() {
  struct Due {
    std::string name;
    std::string id;
  };
  std::vector<Due> due;
  {
    std::lock_guard lock(mu_);
    const auto now = clock_.monotonicTime();
    for (const auto& [name, r] : runtimes_) {
      if (r->phase != Phase::Idle || r->container_id.empty() || !r->want_running) continue;
      if (!isStarted(r->status)) continue;
      if (now < r->next_probe) continue;
      r->next_probe = now + r->spec->healthcheck.interval;
      due.push_back({name, r->container_id});
    }
  }
  std::vector<std::jthread> probes;
  for (const auto& d : due) {
    probes.emplace_back([this, d] {
      const ServiceSpec& spec = *stack_.find(d.name);
      auto info = docker_.inspectContainer(d.id);
      if (!info || !info.value().running) return;  // exits are handled by the event watcher
      ProbeResult p = prober_.probe(spec, info.value(), stack_.network);
      if (observer_.on_probe) observer_.on_probe(d.name, p.healthy, p.seconds);
      bool restart = false;
      {
        std::lock_guard lock(mu_);
        auto& r = rt(d.name);
        if (r.container_id != d.id || r.phase != Phase::Idle) return;
        const auto now = clock_.monotonicTime();
        r.health["kind"] = toString(spec.healthcheck.kind);
        r.health["message"] = p.message;
        r.health["checked_at"] = std::to_string(
            std::chrono::duration_cast<std::chrono::seconds>(clock_.systemTime().time_since_epoch()).count());
        if (p.healthy) {
          r.consecutive_failures = 0;
          r.health["status"] = "healthy";
          if (!isUp(r.status)) {
            setState(d.name,
                     spec.healthcheck.kind == HealthCheckSpec::Kind::None ? ServiceState::Running : ServiceState::Healthy,
                     p.message);
          }
          return;
        }
        if (now - r.last_started < spec.healthcheck.start_period) return;  // grace after a start
        ++r.consecutive_failures;
        r.health["status"] = "failing";
        if (r.consecutive_failures >= spec.healthcheck.retries && r.status != ServiceState::Unhealthy) {
          setState(d.name, ServiceState::Unhealthy,
                   std::to_string(r.consecutive_failures) + " failed probes in a row; last: " + p.message);
          restart = spec.restart.on_unhealthy && spec.restart.policy != RestartSpec::Policy::No;
        }
      }
      if (restart) scheduleRestart(d.name, "unhealthy: " + p.message);
    });
  }
  return static_cast<int>(due.size());
}

}  // namespace dspy::envmanager
