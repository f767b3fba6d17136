// Adoption: after a restart of env-manager, its containers are found again by label.
#include "env_manager/lifecycle/Lifecycle.h"

#include <spdlog/spdlog.h>

#include "env_manager/lifecycle/ServiceRuntime.h"

namespace dspy::envmanager {

using namespace std::chrono_literals;

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
    if (keep.state == "running") {
      monitor_.watch(service, keep.id, clock_.monotonicTime());
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

}  // namespace dspy::envmanager
