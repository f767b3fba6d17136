// Starting one service: its container (pull, create, start) and its first health verdict.
#include "env_manager/lifecycle/Lifecycle.h"

#include <filesystem>

#include <spdlog/spdlog.h>

#include "env_manager/lifecycle/ServiceRuntime.h"

namespace dspy::envmanager {

using namespace std::chrono_literals;

ServiceState Lifecycle::startOne(const std::string& name, const std::function<void(const LifecycleUpdate&)>& emit,
                                std::stop_token stop, DependencyWalk::Step& step) {
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
    r.pending_since_ms = wallMillis(clock_);
    if (!isUp(r.status)) setState(name, ServiceState::Pending, "waiting for dependencies");
  }
  monitor_.unwatch(name);
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

  Status up = Status::Ok();
  if (!walk_.withSlot([&] { up = ensureContainer(spec, emit, stop); }, stop) ||
      (!up.ok() && up.kind() == ErrorKind::Cancelled)) {
    return finish(ServiceState::Stopped, "start cancelled");
  }
  step.release();  // the container runs (or failed): dependents may look at it now
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
  q.name = spec.container_name.empty() ? stack_.project + "-" + spec.name : spec.container_name;
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
    q.ports.push_back({p.container_port, p.protocol, p.host_ip, p.host_port, p.random_host_port});
  }
  for (const auto& v : spec.volumes) q.mounts.push_back({v.source, v.target, v.bind(), v.read_only, v.tmpfs});
  const auto networks = spec.joinedNetworks(stack_.network);
  for (std::size_t i = 0; i < networks.size(); ++i) {
    std::vector<std::string> aliases = {spec.name};
    for (const auto& a : networks[i].aliases) {
      if (a != spec.name) aliases.push_back(a);
    }
    if (i == 0) {
      q.network = networks[i].name;
      q.aliases = std::move(aliases);
    } else {
      q.extra_networks.push_back({networks[i].name, std::move(aliases)});
    }
  }
  q.working_dir = spec.working_dir;
  q.user = spec.user;
  q.hostname = spec.hostname;
  if (!spec.healthcheck.container_test.empty()) {
    const auto& h = spec.healthcheck;
    q.healthcheck = {h.container_test, h.interval, h.timeout, h.start_period, h.retries};
    if (h.container_test[0] == "NONE") q.healthcheck = {h.container_test, {}, {}, {}, 0};
  }
  q.cpus = spec.cpus;
  q.memory_bytes = spec.memory_bytes;
  q.pids_limit = spec.pids_limit;
  q.gpus = spec.gpus && options_.gpus_present;
  q.gpu_count = spec.gpu_count;
  q.gpu_device_ids = spec.gpu_device_ids;
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
    for (const auto& n : spec.joinedNetworks(stack_.network)) {
      if (Status s = docker_.ensureNetwork(n.name, {{kLabelManaged, "true"}, {kLabelProject, stack_.project}}); !s.ok()) {
        return s;
      }
    }
    for (const auto& v : spec.volumes) {
      if (v.bind() && v.create_host_path) {
        // As compose does for its short syntax: a missing host folder is made (Docker
        // refuses a bind mount whose source does not exist).
        std::error_code ec;
        std::filesystem::create_directories(v.source, ec);
        if (ec) return Error{"cannot make the host folder " + v.source + " for a bind mount: " + ec.message()};
      }
      if (v.bind() || v.tmpfs || v.source.empty()) continue;
      if (Status s = docker_.ensureVolume(v.source, {{kLabelManaged, "true"}, {kLabelProject, stack_.project}});
          !s.ok()) {
        return s;
      }
    }
  }
  const bool reused = !id.empty();
  std::optional<DependencyWalk::StartTurn> turn;  // the create+start, in critical-path order
  const auto take_turn = [&] {
    if (!turn) {
      if (auto t = walk_.startTurn(name, stop)) turn.emplace(std::move(*t));
    }
    return turn.has_value();
  };
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
    if (!take_turn()) return Error{"start cancelled", ErrorKind::Cancelled};
    emit({name, "creating", "creating container " + stack_.project + "-" + name, 30});
    {
      std::lock_guard lock(mu_);
      setState(name, ServiceState::Starting, "creating the container");
      auto& r = rt(name);
      r.timeline = StartTimeline{};
      r.timeline.requested_ms = r.pending_since_ms;
      r.timeline.created_ms = wallMillis(clock_);
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
  if (!take_turn()) return Error{"start cancelled", ErrorKind::Cancelled};
  emit({name, "starting", "starting container " + id.substr(0, 12), 50});
  {
    std::lock_guard lock(mu_);
    setState(name, ServiceState::Starting, "starting the container");
    auto& r = rt(name);
    r.last_started = clock_.monotonicTime();
    if (r.timeline.requested_ms != r.pending_since_ms || r.timeline.created_ms == 0 || reused) {
      r.timeline = StartTimeline{};
      r.timeline.requested_ms = r.pending_since_ms;
    }
    r.timeline.started_ms = wallMillis(clock_);
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
  using Kind = HealthMonitor::StartVerdict::Kind;
  const std::string& name = spec.name;
  std::string id;
  {
    std::lock_guard lock(mu_);
    id = rt(name).container_id;
  }
  auto last_emit = clock_.monotonicTime() - 1h;
  // The monitor probes on its start schedule; each attempt updates the state table and,
  // now and then, the caller.
  const auto v = monitor_.awaitHealthy(
      name, id, std::chrono::duration_cast<std::chrono::milliseconds>(options_.first_probe_delay),
      clock_.monotonicTime() + options_.health_timeout, stop, [&](int attempt, const ProbeReport& p) {
        {
          std::lock_guard lock(mu_);
          auto& tl = rt(name).timeline;
          if (tl.first_probe_ms == 0 && tl.started_ms != 0 && tl.outcome.empty()) tl.first_probe_ms = wallMillis(clock_);
          rt(name).health = {{"kind", toString(spec.healthcheck.kind)},
                             {"status", p.healthy ? "healthy" : "starting"},
                             {"message", p.message},
                             {"attempts", std::to_string(attempt)},
                             {"checked_at", std::to_string(p.checked_at)}};
        }
        const auto now = clock_.monotonicTime();
        if (!p.healthy && (now - last_emit >= 1s || (attempt & (attempt - 1)) == 0)) {
          last_emit = now;
          emit({name, "waiting", "waiting for health, attempt " + std::to_string(attempt) + ": " + p.message, 70});
        }
      });
  // Closes this start's timeline (when this start started the container).
  auto closeTimeline = [&](ServiceState status) {
    auto& tl = rt(name).timeline;
    if (tl.started_ms == 0 || !tl.outcome.empty() || tl.requested_ms != rt(name).pending_since_ms) return;
    tl.outcome = std::string(envmanager::name(status));
    if (isUp(status) || status == ServiceState::Completed) tl.ready_ms = wallMillis(clock_);
  };
  auto settle = [&](ServiceState status, const std::string& why) {
    std::lock_guard lock(mu_);
    closeTimeline(status);
    setState(name, status, why);
    return status;
  };
  switch (v.kind) {
    case Kind::InspectFailed: {
      const std::string why = "cannot inspect the container: " + v.error;
      emit({name, "failed", why, 0});
      return settle(ServiceState::Failed, why);
    }
    case Kind::Exited: {
      const auto& c = v.container;
      const bool completed = c.exit_code == 0 && !c.oom_killed;
      std::string why = c.oom_killed ? "killed: out of memory" : "exited with code " + std::to_string(c.exit_code);
      const ServiceState status = completed ? ServiceState::Completed : ServiceState::Failed;
      if (!completed) why += " while starting";
      emit({name, std::string(envmanager::name(status)), why, completed ? 100 : 0});
      return settle(status, why);
    }
    case Kind::NoHealthCheck:
      emit({name, "running", "running (no health check)", 100});
      monitor_.watch(name, id, clock_.monotonicTime() + spec.healthcheck.interval);
      return settle(ServiceState::Running, "running (no health check)");
    case Kind::Healthy: {
      {
        std::lock_guard lock(mu_);
        rt(name).consecutive_failures = 0;
        monitor_.watch(name, id, clock_.monotonicTime() + spec.healthcheck.interval);
        closeTimeline(ServiceState::Healthy);
        setState(name, ServiceState::Healthy, v.last.message);
      }
      emit({name, "healthy", v.last.message + " (attempt " + std::to_string(v.attempts) + ")", 100});
      return ServiceState::Healthy;
    }
    case Kind::TimedOut: {
      const std::string why = "not healthy within " + formatSeconds(options_.health_timeout) + " (" +
                              std::to_string(v.attempts) + " probes); last: " + v.last.message;
      emit({name, "failed", why, 0});
      return settle(ServiceState::Failed, why);
    }
    case Kind::Cancelled:
      break;
  }
  return settle(ServiceState::Waiting, "start cancelled while waiting for health");
}

}  // namespace dspy::envmanager
