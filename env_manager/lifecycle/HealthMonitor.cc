#include "env_manager/lifecycle/HealthMonitor.h"

#include <algorithm>
#include <vector>

namespace dspy::envmanager {

HealthMonitor::Subscription& HealthMonitor::Subscription::operator=(Subscription&& o) noexcept {
  if (this != &o) {
    this->~Subscription();
    monitor_ = std::exchange(o.monitor_, nullptr);
    it_ = o.it_;
  }
  return *this;
}

HealthMonitor::Subscription::~Subscription() {
  if (monitor_ == nullptr) return;
  std::lock_guard lock(monitor_->listeners_mu_);
  monitor_->listeners_.erase(it_);
  monitor_ = nullptr;
}

HealthMonitor::HealthMonitor(const ServicesFile& stack, docker::DockerApi& docker, HealthProber& prober, Clock& clock,
                             std::chrono::milliseconds tick)
    : stack_(stack), docker_(docker), prober_(prober), clock_(clock), tick_(tick) {}

HealthMonitor::~HealthMonitor() { shutdown(); }

void HealthMonitor::run() {
  if (thread_.joinable()) return;
  thread_ = std::jthread([this, stop = stop_.get_token()] {
    while (clock_.sleepFor(tick_, stop)) probeDue();
  });
}

void HealthMonitor::shutdown() {
  stop_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void HealthMonitor::watch(const std::string& service, const std::string& container_id,
                          Clock::MonotonicTime first_probe) {
  std::lock_guard lock(mu_);
  watched_[service] = {container_id, first_probe};
}

void HealthMonitor::unwatch(const std::string& service) {
  std::lock_guard lock(mu_);
  watched_.erase(service);
}

ProbeReport HealthMonitor::probeNow(const std::string& service, const docker::ContainerInfo& container) {
  ProbeReport report;
  report.service = service;
  report.container_id = container.id;
  if (!container.running) {
    report.running = false;
    report.message = "not running (exit code " + std::to_string(container.exit_code) + ")";
  } else {
    const ProbeResult p = prober_.probe(*stack_.find(service), container, stack_.network);
    report.healthy = p.healthy;
    report.decided = p.decided;
    report.message = p.message;
    report.seconds = p.seconds;
  }
  report.checked_at =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.systemTime().time_since_epoch()).count();
  publish(report);
  return report;
}

HealthMonitor::StartVerdict HealthMonitor::awaitHealthy(
    const std::string& service, const std::string& container_id, std::chrono::milliseconds first_probe_delay,
    Clock::MonotonicTime deadline, std::stop_token stop,
    const std::function<void(int attempt, const ProbeReport&)>& on_probe) {
  using Kind = StartVerdict::Kind;
  const ServiceSpec& spec = *stack_.find(service);
  StartVerdict v;
  auto delay = first_probe_delay;
  while (true) {
    auto info = docker_.inspectContainer(container_id);
    if (!info) {
      v.kind = Kind::InspectFailed;
      v.error = info.error();
      return v;
    }
    v.container = info.value();
    if (!v.container.running) {
      v.kind = Kind::Exited;
      return v;
    }
    if (spec.healthcheck.kind == HealthCheckSpec::Kind::None) {
      v.kind = Kind::NoHealthCheck;
      return v;
    }
    ++v.attempts;
    v.last = probeNow(service, v.container);
    if (on_probe) on_probe(v.attempts, v.last);
    if (v.last.healthy) {
      v.kind = Kind::Healthy;
      return v;
    }
    if (clock_.monotonicTime() >= deadline) {
      v.kind = Kind::TimedOut;
      return v;
    }
    if (!clock_.sleepFor(delay, stop)) {
      v.kind = Kind::Cancelled;
      return v;
    }
    // Probes from outside (http, tcp, redis) cost a connection: they keep a 100 ms pace,
    // so a service is seen healthy at most that long after it is. Probes that run in the
    // container (exec) or read Docker's state back off further, up to the interval.
    const auto kind = spec.healthcheck.kind;
    const bool cheap = kind == HealthCheckSpec::Kind::Http || kind == HealthCheckSpec::Kind::Tcp ||
                       kind == HealthCheckSpec::Kind::Redis;
    const auto cap = cheap ? std::min(spec.healthcheck.interval, kCheapProbePace) : spec.healthcheck.interval;
    delay = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(delay * 3 / 2), cap);
  }
}

int HealthMonitor::probeDue() {
  std::vector<std::pair<std::string, std::string>> due;
  {
    std::lock_guard lock(mu_);
    const auto now = clock_.monotonicTime();
    for (auto& [service, w] : watched_) {
      if (now < w.next_probe) continue;
      w.next_probe = now + stack_.find(service)->healthcheck.interval;
      due.emplace_back(service, w.container_id);
    }
  }
  // Probes of different services run side by side: one slow service must not delay
  // the others' verdicts.
  std::vector<std::jthread> probes;
  probes.reserve(due.size());
  for (const auto& [service, id] : due) {
    probes.emplace_back([this, service, id] {
      auto info = docker_.inspectContainer(id);
      if (!info) return;  // gone: the lifecycle hears of it from Docker's events
      {
        std::lock_guard lock(mu_);
        auto w = watched_.find(service);
        if (w == watched_.end() || w->second.container_id != id) return;  // unwatched meanwhile
      }
      probeNow(service, info.value());
    });
  }
  return static_cast<int>(due.size());
}

HealthMonitor::Subscription HealthMonitor::subscribe(Listener listener) {
  std::lock_guard lock(listeners_mu_);
  listeners_.push_back(std::move(listener));
  return Subscription(this, std::prev(listeners_.end()));
}

std::optional<ProbeReport> HealthMonitor::latest(const std::string& service) const {
  std::lock_guard lock(mu_);
  auto it = latest_.find(service);
  if (it == latest_.end()) return std::nullopt;
  return it->second;
}

void HealthMonitor::reportExit(const std::string& service, const std::string& container_id,
                               const std::string& message) {
  ProbeReport r;
  r.service = service;
  r.container_id = container_id;
  r.healthy = false;
  r.running = false;
  r.message = message;
  r.checked_at = std::chrono::duration_cast<std::chrono::seconds>(clock_.systemTime().time_since_epoch()).count();
  publish(r);
}

void HealthMonitor::publish(const ProbeReport& report) {
  {
    std::lock_guard lock(mu_);
    latest_[report.service] = report;
  }
  std::lock_guard lock(listeners_mu_);
  for (const auto& l : listeners_) l(report);
}

}  // namespace dspy::envmanager
