// env_manager.v1 RPCs.
#include "env_manager/api/EnvManagerService.h"
#include "common/Clock.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/GrpcErrors.h"
#include "common/GrpcStream.h"

namespace dspy::envmanager {
namespace {

namespace pb = env_manager::v1;
using namespace std::chrono_literals;

std::int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

grpc::Status invalid(const std::string& message) { return {grpc::StatusCode::INVALID_ARGUMENT, message}; }

std::vector<std::string> names(const google::protobuf::RepeatedPtrField<std::string>& field) {
  return {field.begin(), field.end()};
}

// Checks that every name is a service of the stack.
grpc::Status checkNames(const Lifecycle& lc, const std::vector<std::string>& list) {
  std::string unknown;
  for (const auto& n : list) {
    if (!lc.graph().contains(n)) unknown += (unknown.empty() ? "" : ", ") + n;
  }
  if (!unknown.empty()) return {grpc::StatusCode::NOT_FOUND, "unknown service(s): " + unknown};
  return grpc::Status::OK;
}

}  // namespace

EnvManagerService::EnvManagerService(Lifecycle& lifecycle, TaskRunner& tasks, docker::DockerApi& docker, Limits limits)
    : lifecycle_(lifecycle),
      tasks_(tasks),
      docker_(docker),
      hardware_(detectHardware()),
      blocking_(WorkerPool::Limits{.max_threads = limits.blocking_threads, .max_queued = limits.blocking_queue}) {}

grpc::ServerUnaryReactor* EnvManagerService::offload(grpc::CallbackServerContext* ctx,
                                                     std::function<grpc::Status()> work) {
  auto* reactor = ctx->DefaultReactor();
  const bool queued = blocking_.run([reactor, w = std::move(work)] {
    grpc::Status status;
    try {
      status = w();
    } catch (const std::exception& e) {
      spdlog::error("RPC failed: {}", e.what());
      status = grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
    reactor->Finish(status);
  });
  if (!queued) {
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "env-manager is busy: too many calls wait for a worker; retry later"));
  }
  return reactor;
}

grpc::ServerWriteReactor<pb::ServiceStatusUpdate>* EnvManagerService::StartServices(
    grpc::CallbackServerContext*, const pb::StartServicesRequest* req) {
  const auto list = names(req->service_names());
  if (auto s = checkNames(lifecycle_, list); !s.ok()) return ProducerStream<pb::ServiceStatusUpdate>::failed(s);
  if (req->overrides_size() > 0) {
    return ProducerStream<pb::ServiceStatusUpdate>::failed(
        invalid("overrides are not supported: change the services file and reload instead"));
  }
  return new ProducerStream<pb::ServiceStatusUpdate>(
      [this, list](const ProducerStream<pb::ServiceStatusUpdate>::Write& write, std::stop_token stop) {
        auto outcome = lifecycle_.start(
            list,
            [&](const LifecycleUpdate& u) {
              pb::ServiceStatusUpdate m;
              m.set_service_name(u.service);
              m.set_status(u.status);
              m.set_message(u.message);
              m.set_progress(u.progress);
              write(m);
            },
            stop);
        if (!outcome) return toGrpc(outcome.fullError());
        return grpc::Status::OK;
      });
}

grpc::ServerUnaryReactor* EnvManagerService::StopServices(grpc::CallbackServerContext* ctx,
                                                          const pb::StopServicesRequest* req,
                                                          pb::StopServicesResponse* resp) {
  const auto list = names(req->service_names());
  if (auto s = checkNames(lifecycle_, list); !s.ok()) return finishNow(ctx, s);
  if (req->timeout_seconds() < 0 || req->timeout_seconds() > 3600) {
    return finishNow(ctx, invalid("timeout_seconds must be between 0 (each service's grace period) and 3600"));
  }
  const int timeout = req->timeout_seconds();
  return offload(ctx, [this, list, timeout, resp] {
    auto results = lifecycle_.stop(list, timeout);
    if (!results) return toGrpc(results.fullError());
    bool ok = true;
    for (const auto& [name, text] : results.value()) {
      (*resp->mutable_service_results())[name] = text;
      ok = ok && (text == "stopped" || text == "not running");
    }
    resp->set_success(ok);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* EnvManagerService::RestartService(grpc::CallbackServerContext* ctx,
                                                            const pb::RestartServiceRequest* req,
                                                            pb::RestartServiceResponse* resp) {
  const std::string name = req->service_name();
  grpc::Status bad = name.empty() ? invalid("service_name is required") : checkNames(lifecycle_, {name});
  if (!bad.ok()) return finishNow(ctx, bad);
  if (req->timeout_seconds() < 0) return finishNow(ctx, invalid("timeout_seconds must not be negative"));
  const int timeout = req->timeout_seconds();
  return offload(ctx, [this, name, timeout, resp] {
    auto r = lifecycle_.restart(name, timeout);
    resp->set_success(r.ok());
    resp->set_message(r.ok() ? r.value() : r.error());
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* EnvManagerService::GetServicesStatus(grpc::CallbackServerContext* ctx,
                                                               const pb::GetServicesStatusRequest* req,
                                                               pb::ServicesStatusResponse* resp) {
  const auto list = names(req->service_names());
  if (auto s = checkNames(lifecycle_, list); !s.ok()) return finishNow(ctx, s);
  return offload(ctx, [this, list, resp] {
    auto views = lifecycle_.status(list);
    std::vector<docker::Stats> stats(views.size());
    {
      std::vector<std::jthread> readers;  // one-shot stats of every running container at once
      for (std::size_t i = 0; i < views.size(); ++i) {
        if (views[i].container_id.empty() || isDown(views[i].status)) continue;
        readers.emplace_back([&, i] {
          auto s = docker_.stats(views[i].container_id);
          if (s) stats[i] = s.value();
        });
      }
    }
    for (std::size_t i = 0; i < views.size(); ++i) {
      const auto& v = views[i];
      pb::ServiceStatus st;
      st.set_name(v.name);
      // The old clients' words; the finer state (healthy, blocked, crash_loop, ...) and
      // its reason go into health_checks.
      st.set_status(std::string(wireStatus(v.status)));
      (*st.mutable_health_checks())["state"] = std::string(name(v.status));
      st.set_container_id(v.container_id);
      for (int p : v.ports) st.add_ports(p);
      for (const auto& [k, val] : v.health) (*st.mutable_health_checks())[k] = val;
      if (!v.message.empty()) (*st.mutable_health_checks())["state_message"] = v.message;
      (*st.mutable_health_checks())["restarts"] = std::to_string(v.restarts);
      (*st.mutable_health_checks())["required"] = v.required ? "true" : "false";
      st.set_started_at(v.started_at);
      if (v.timeline.requested_ms != 0 || v.timeline.started_ms != 0) {
        auto* tl = st.mutable_last_start();
        tl->set_requested_at_ms(v.timeline.requested_ms);
        tl->set_created_at_ms(v.timeline.created_ms);
        tl->set_started_at_ms(v.timeline.started_ms);
        tl->set_first_probe_at_ms(v.timeline.first_probe_ms);
        tl->set_ready_at_ms(v.timeline.ready_ms);
        tl->set_outcome(v.timeline.outcome);
      }
      auto* usage = st.mutable_resource_usage();
      usage->set_cpu_percent(stats[i].cpu_percent);
      usage->set_memory_bytes(stats[i].memory_bytes);
      usage->set_network_rx_bytes(stats[i].network_rx_bytes);
      usage->set_network_tx_bytes(stats[i].network_tx_bytes);
      (*resp->mutable_services())[v.name] = st;
    }
    return grpc::Status::OK;
  });
}

grpc::ServerWriteReactor<pb::HealthUpdate>* EnvManagerService::StreamHealth(grpc::CallbackServerContext*,
                                                                           const pb::StreamHealthRequest* req) {
  auto list = names(req->service_names());
  if (auto s = checkNames(lifecycle_, list); !s.ok()) return ProducerStream<pb::HealthUpdate>::failed(s);
  if (req->interval_seconds() < 0 || req->interval_seconds() > 3600) {
    return ProducerStream<pb::HealthUpdate>::failed(invalid("interval_seconds must be between 0 (5 s) and 3600"));
  }
  if (list.empty()) list = lifecycle_.stack().names();
  const auto interval = std::chrono::seconds(req->interval_seconds() == 0 ? 5 : req->interval_seconds());
  return new ProducerStream<pb::HealthUpdate>(
      [this, list, interval](const ProducerStream<pb::HealthUpdate>::Write& write, std::stop_token stop) {
        // Every `interval` the latest verdict of each service; in between, a service whose
        // verdict flips is sent at once. The verdicts are the health monitor's: this
        // stream never probes by itself.
        std::mutex mu;
        std::condition_variable_any flipped;
        std::set<std::string> changed;
        std::map<std::string, bool> last_sent;
        const std::set<std::string> wanted(list.begin(), list.end());
        auto subscription = lifecycle_.health().subscribe([&](const ProbeReport& r) {
          if (!wanted.count(r.service)) return;
          std::lock_guard lock(mu);
          auto it = last_sent.find(r.service);
          if (it != last_sent.end() && it->second == r.healthy) return;
          changed.insert(r.service);
          flipped.notify_all();
        });
        auto send = [&](const std::string& service) {
          const pb::HealthUpdate u = healthUpdate(service);
          {
            std::lock_guard lock(mu);
            last_sent[service] = u.healthy();
          }
          return write(u);
        };
        auto next_round = std::chrono::steady_clock::now();
        while (!stop.stop_requested()) {
          std::set<std::string> due;
          {
            std::unique_lock lock(mu);
            flipped.wait_until(lock, stop, next_round, [&] { return !changed.empty(); });
            if (stop.stop_requested()) break;
            if (std::chrono::steady_clock::now() >= next_round) {
              due = wanted;
              next_round = std::chrono::steady_clock::now() + interval;
            }
            due.insert(changed.begin(), changed.end());
            changed.clear();
          }
          for (const auto& service : list) {
            if (due.count(service) && !send(service)) return grpc::Status::OK;
          }
        }
        return grpc::Status::OK;
      });
}

pb::HealthUpdate EnvManagerService::healthUpdate(const std::string& service) const {
  pb::HealthUpdate u;
  u.set_service_name(service);
  u.set_timestamp(nowSeconds());
  const auto view = lifecycle_.status({service}).at(0);
  const std::string state(envmanager::name(view.status));
  (*u.mutable_details())["status"] = state;
  const auto report = lifecycle_.health().latest(service);
  if (view.container_id.empty()) {
    u.set_healthy(false);
    u.set_message("no container (" + state + ")");
  } else if (!isStarted(view.status)) {
    u.set_healthy(false);
    u.set_message(state + (view.message.empty() ? "" : ": " + view.message));
  } else if (!report || report->container_id != view.container_id) {
    // Running, not probed yet: the lifecycle's word.
    u.set_healthy(isUp(view.status));
    u.set_message(view.message.empty() ? state : view.message);
  } else {
    u.set_healthy(report->healthy);
    u.set_message(report->message);
    (*u.mutable_details())["probe_ms"] = std::to_string(static_cast<int>(report->seconds * 1000));
    (*u.mutable_details())["checked_at"] = std::to_string(report->checked_at);
  }
  if (!view.container_id.empty()) (*u.mutable_details())["container_id"] = view.container_id.substr(0, 12);
  return u;
}

grpc::ServerUnaryReactor* EnvManagerService::GetResourceAvailability(grpc::CallbackServerContext* ctx,
                                                                     const pb::GetResourceAvailabilityRequest* req,
                                                                     pb::ResourceAvailabilityResponse* resp) {
  auto a = tasks_.availability(req->workload_class());
  if (!a) return finishNow(ctx, toGrpc(a.fullError()));
  resp->set_capacity(a.value().capacity);
  resp->set_in_use(a.value().in_use);
  resp->set_available(a.value().in_use < a.value().capacity);
  auto* hw = resp->mutable_hardware();
  hw->set_cpu_cores(hardware_.cpu_cores);
  hw->set_memory_bytes(hardware_.memory_bytes);
  for (const auto& g : hardware_.gpus) {
    auto* gpu = hw->add_gpus();
    gpu->set_index(g.index);
    gpu->set_name(g.name);
    gpu->set_memory_bytes(g.memory_bytes);
    gpu->set_utilization_percent(g.utilization_percent);
  }
  return finishNow(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* EnvManagerService::ExecuteTask(grpc::CallbackServerContext* ctx,
                                                         const pb::ExecuteTaskRequest* req,
                                                         pb::ExecuteTaskResponse* resp) {
  const std::string id = req->task_id();
  const std::string cls = req->workload_class().empty() ? "cpu_short" : req->workload_class();
  std::map<std::string, std::string> payload(req->payload().begin(), req->payload().end());
  const int timeout = req->timeout_seconds();
  return offload(ctx, [this, id, cls, payload, timeout, resp] {
    auto outcome = tasks_.run(id, cls, payload, timeout);
    if (!outcome) return toGrpc(outcome.fullError());
    resp->set_success(outcome.value().success);
    resp->set_error(outcome.value().error);
    resp->set_latency_ms(outcome.value().latency_ms);
    for (const auto& [k, v] : outcome.value().result) (*resp->mutable_result())[k] = v;
    return grpc::Status::OK;
  });
}

grpc::ServerWriteReactor<pb::ImagePullProgress>* EnvManagerService::PullImages(grpc::CallbackServerContext*,
                                                                              const pb::PullImagesRequest* req) {
  std::vector<std::string> images(req->image_names().begin(), req->image_names().end());
  for (const auto& i : images) {
    if (i.empty() || i.find_first_of(" \t\n") != std::string::npos) {
      return ProducerStream<pb::ImagePullProgress>::failed(invalid("bad image name '" + i + "'"));
    }
  }
  if (images.empty()) {
    for (const auto& s : lifecycle_.stack().services) {
      if (std::find(images.begin(), images.end(), s.image) == images.end()) images.push_back(s.image);
    }
  }
  return new ProducerStream<pb::ImagePullProgress>(
      [this, images](const ProducerStream<pb::ImagePullProgress>::Write& write, std::stop_token stop) {
        for (const auto& image : images) {
          std::map<std::string, std::pair<std::int64_t, std::int64_t>> layers;
          int last_percent = -1;
          std::string last_status;
          Status s = docker_.pullImage(
              image,
              [&](const docker::PullProgress& p) {
                std::string status = "downloading";
                if (p.status.rfind("Extracting", 0) == 0) status = "extracting";
                if (!p.layer.empty() && p.total > 0) layers[p.layer] = {p.current, p.total};
                std::int64_t cur = 0, tot = 0;
                for (const auto& [l, ct] : layers) {
                  cur += ct.first;
                  tot += ct.second;
                }
                const int percent = tot > 0 ? static_cast<int>(cur * 100 / tot) : 0;
                if (percent == last_percent && status == last_status) return;
                last_percent = percent;
                last_status = status;
                pb::ImagePullProgress m;
                m.set_image_name(image);
                m.set_status(status);
                m.set_current(cur);
                m.set_total(tot);
                m.set_progress_percent(percent);
                m.set_message(p.status);
                write(m);
              },
              stop);
          pb::ImagePullProgress done;
          done.set_image_name(image);
          done.set_status(s.ok() ? "complete" : "error");
          done.set_progress_percent(s.ok() ? 100 : 0);
          done.set_message(s.ok() ? "pulled" : s.error());
          if (!write(done)) return grpc::Status::OK;
        }
        return grpc::Status::OK;
      });
}

grpc::ServerWriteReactor<pb::LogEntry>* EnvManagerService::StreamLogs(grpc::CallbackServerContext*,
                                                                       const pb::StreamLogsRequest* req) {
  const std::string name = req->service_name();
  if (name.empty()) return ProducerStream<pb::LogEntry>::failed(invalid("service_name is required"));
  if (auto s = checkNames(lifecycle_, {name}); !s.ok()) return ProducerStream<pb::LogEntry>::failed(s);
  if (req->tail() < 0 || req->since_timestamp() < 0) {
    return ProducerStream<pb::LogEntry>::failed(invalid("tail and since_timestamp must not be negative"));
  }
  const std::string id = lifecycle_.containerOf(name);
  if (id.empty()) {
    return ProducerStream<pb::LogEntry>::failed(
        {grpc::StatusCode::NOT_FOUND, "service " + name + " has no container yet; start it first"});
  }
  docker::LogOptions o;
  o.follow = req->follow();
  o.tail = req->tail();
  o.since = req->since_timestamp();
  return new ProducerStream<pb::LogEntry>(
      [this, name, id, o](const ProducerStream<pb::LogEntry>::Write& write, std::stop_token stop) {
        Status s = docker_.streamLogs(
            id, o,
            [&](const docker::LogLine& l) {
              pb::LogEntry e;
              e.set_service_name(name);
              e.set_container_id(id);
              e.set_stream(l.stream);
              e.set_message(l.message);
              e.set_timestamp(l.timestamp_ns / 1'000'000'000);
              e.set_timestamp_ns(l.timestamp_ns);
              return write(e);
            },
            stop);
        if (!s.ok() && s.kind() != ErrorKind::Cancelled) return toGrpc(s.fullError());
        return grpc::Status::OK;
      });
}

}  // namespace dspy::envmanager
