#include "env_manager/api/EnvManagerMetrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace dspy::envmanager {

struct EnvManagerMetrics::Families {
  prometheus::Family<prometheus::Histogram>* docker_latency;
  prometheus::Family<prometheus::Counter>* starts;
  prometheus::Family<prometheus::Counter>* stops;
  prometheus::Family<prometheus::Counter>* failed;
  prometheus::Family<prometheus::Counter>* restarts;
  prometheus::Family<prometheus::Histogram>* probe_latency;
  prometheus::Gauge* active;
  prometheus::Gauge* docker_up;
  prometheus::Family<prometheus::Gauge>* service_up;
  const prometheus::Histogram::BucketBoundaries fast{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25,  0.5,    1,     2.5,  5,     10};
};

EnvManagerMetrics::EnvManagerMetrics(Metrics& metrics) : metrics_(metrics), f_(std::make_shared<Families>()) {
  auto& reg = metrics.registry();
  f_->docker_latency = &prometheus::BuildHistogram()
                            .Name("env_manager_docker_api_duration_seconds")
                            .Help("Docker Engine API call latency by operation and outcome")
                            .Register(reg);
  f_->starts = &prometheus::BuildCounter()
                    .Name("env_manager_service_start_total")
                    .Help("Service starts by outcome (success, failed, blocked, ...)")
                    .Register(reg);
  f_->stops =
      &prometheus::BuildCounter().Name("env_manager_service_stop_total").Help("Service stops by outcome").Register(reg);
  f_->failed = &prometheus::BuildCounter()
                    .Name("env_manager_failed_service_starts_total")
                    .Help("Failed service starts by reason")
                    .Register(reg);
  f_->restarts = &prometheus::BuildCounter()
                      .Name("env_manager_service_restarts_total")
                      .Help("Restarts by reason (exited, unhealthy, requested, crash_loop)")
                      .Register(reg);
  f_->probe_latency = &prometheus::BuildHistogram()
                           .Name("env_manager_service_health_check_duration_seconds")
                           .Help("Health probe latency by service and result")
                           .Register(reg);
  f_->active = &prometheus::BuildGauge()
                    .Name("env_manager_active_services")
                    .Help("Services that are healthy or running")
                    .Register(reg)
                    .Add({});
  f_->docker_up =
      &prometheus::BuildGauge().Name("env_manager_docker_up").Help("1 when the Docker Engine answers").Register(reg).Add({});
  f_->service_up = &prometheus::BuildGauge()
                        .Name("env_manager_service_up")
                        .Help("1 when the service is healthy (or running without a check), by service and "
                              "whether it is required")
                        .Register(reg);
}

std::function<void(std::string_view, bool, double)> EnvManagerMetrics::dockerObserver() {
  return [f = f_](std::string_view op, bool ok, double s) {
    f->docker_latency->Add({{"operation", std::string(op)}, {"status", ok ? "success" : "error"}}, f->fast).Observe(s);
  };
}

LifecycleObserver EnvManagerMetrics::lifecycleObserver() {
  return LifecycleObserver{
      .on_start = [f = f_](const std::string& s, const std::string& outcome) {
        f->starts->Add({{"service_name", s}, {"status", outcome}}).Increment();
      },
      .on_start_failed = [f = f_](const std::string& s, const std::string& reason) {
        f->failed->Add({{"service_name", s}, {"reason", reason}}).Increment();
      },
      .on_stop = [f = f_](const std::string& s, const std::string& outcome) {
        f->stops->Add({{"service_name", s}, {"status", outcome}}).Increment();
      },
      .on_restart = [f = f_](const std::string& s, const std::string& reason) {
        f->restarts->Add({{"service_name", s}, {"reason", reason}}).Increment();
      },
      .on_probe = [f = f_](const std::string& s, bool healthy, double seconds) {
        f->probe_latency->Add({{"service_name", s}, {"status", healthy ? "healthy" : "unhealthy"}}, f->fast)
            .Observe(seconds);
      },
  };
}

void EnvManagerMetrics::attach(const Lifecycle& lifecycle) {
  metrics_.addScrapeHook([f = f_, lc = &lifecycle] {
    f->active->Set(lc->activeServices());
    f->docker_up->Set(lc->dockerReachable() ? 1 : 0);
    for (const auto& v : lc->status({})) {
      f->service_up->Add({{"service_name", v.name}, {"required", v.required ? "true" : "false"}})
          .Set(isUp(v.status) ? 1 : 0);
      // Every service's restart series exist from the start (at 0), so that rates and
      // alerts see a first restart as a change.
      for (const char* reason : {"exited", "unhealthy", "requested", "crash_loop"}) {
        f->restarts->Add({{"service_name", v.name}, {"reason", reason}});
      }
    }
  });
}

HealthReport envManagerHealth(const Lifecycle& lifecycle, docker::DockerClient& docker) {
  HealthReport h;
  auto ping = docker.ping();
  h.components["docker"] = ping ? "reachable at " + docker.host() + " (API " + ping.value().substr(2) + ")"
                                : "unreachable: " + ping.error();
  int up = 0;
  int total = 0;
  std::string bad;
  for (const auto& v : lifecycle.status({})) {
    ++total;
    if (isUp(v.status)) ++up;
    if (v.required && (isDead(v.status) || v.status == ServiceState::Unhealthy)) {
      bad += (bad.empty() ? "" : ", ") + v.name + " " + std::string(name(v.status));
    }
  }
  h.components["services"] = std::to_string(up) + "/" + std::to_string(total) + " up";
  if (!bad.empty()) h.components["required_services_down"] = bad;
  // A required service that is down makes env-manager degraded, not down.
  h.status = !ping ? "down" : (bad.empty() ? "ok" : "degraded");
  return h;
}

}  // namespace dspy::envmanager
