// orchestrator.v1 RPCs over the TaskEngine.
#include "orchestrator/api/OrchestratorService.h"

#include <prometheus/registry.h>

#include <deque>
#include <unordered_map>
#include <nlohmann/json.hpp>

#include "common/GrpcErrors.h"
#include "common/GrpcStream.h"
#include "common/Text.h"
#include "orchestrator/api/TaskViews.h"

namespace dspy::orchestrator {
namespace pb = ::orchestrator::v1;
namespace {

void fill(const TaskRecord& t, pb::TaskInfo* out) {
  out->set_task_id(t.id);
  out->set_class_(t.cls);
  out->set_status(toString(t.status));
  out->set_priority(t.priority);
  out->set_workflow_id(t.workflow_id);
  out->set_attempts(t.attempts);
  for (const auto& [k, v] : t.payload) (*out->mutable_payload())[k] = v;
  for (const auto& [k, v] : t.result) (*out->mutable_result())[k] = v;
  out->set_error(t.error);
  out->set_submitted_at_ms(t.submitted_ms);
  out->set_started_at_ms(t.started_ms);
  out->set_finished_at_ms(t.finished_ms);
}

pb::TaskResult toResult(const TaskRecord& t) {
  pb::TaskResult r;
  r.set_task_id(t.id);
  r.set_status(toString(t.status));
  for (const auto& [k, v] : t.result) (*r.mutable_result())[k] = v;
  r.set_error(t.error);
  r.set_duration_ms(durationMs(t));
  // An unfinished task carries the time of its last change, as the old server sent.
  r.set_completed_at((t.finished_ms ? t.finished_ms : std::max(t.submitted_ms, t.started_ms)) / 1000);
  r.set_attempts(t.attempts);
  r.set_class_(t.cls);
  return r;
}

}  // namespace

HealthReport healthReport(const ServiceParts& parts) {
  HealthReport r;
  EnvManagerClient* env_manager = parts.env_manager;
  const std::string store = parts.engine.storeHealth();
  r.components["store"] = store;
  if (store != "ok") r.status = "down";
  if (env_manager != nullptr) {
    const std::string link = env_manager->linkState();
    r.components["env_manager"] = link;
    const std::string services = env_manager->servicesState();
    if (!services.empty()) r.components["ensure_services"] = services;
    // Only a link that failed degrades; idle and connecting are on their way.
    if (link == "unreachable" && r.status == "ok") r.status = "degraded";
  }
  if (parts.runner != nullptr) {
    r.components["runner"] = parts.runner->health();
    if (parts.runner->unreachable() && r.status == "ok") r.status = "degraded";
  }
  if (parts.relay != nullptr && parts.events != nullptr) {
    const OutboxStats out = parts.events->outboxStats();
    r.components["kafka"] = parts.relay->state();
    r.components["outbox"] = std::to_string(out.pending) + " event(s) pending";
    // Work is still accepted; the events wait in the outbox.
    if (out.pending > parts.kafka_degraded_depth && r.status == "ok") r.status = "degraded";
  } else {
    r.components["kafka"] = "not configured";
  }
  if (parts.slurm != nullptr) {
    r.components["slurm"] = parts.slurm->health();
    if (r.components["slurm"] != "ok" && r.status == "ok") r.status = "degraded";
  } else {
    r.components["slurm"] = "not configured";
  }
  return r;
}

grpc::ServerUnaryReactor* OrchestratorService::SubmitTask(grpc::CallbackServerContext* ctx,
                                                          const pb::SubmitTaskRequest* req,
                                                          pb::SubmitTaskResponse* resp) {
  SubmitRequest s;
  s.id = req->id();
  s.cls = req->class_();
  s.payload = Payload(req->payload().begin(), req->payload().end());
  s.priority = req->priority();
  s.workflow_id = req->workflow_id();
  auto* reactor = ctx->DefaultReactor();
  engine_.submit(std::move(s), [reactor, resp](Result<std::string> r) {
    if (!r) {
      reactor->Finish(toGrpc(r.fullError()));
      return;
    }
    resp->set_success(true);
    resp->set_task_id(r.value());
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* OrchestratorService::SubmitTasks(grpc::CallbackServerContext* ctx,
                                                           const pb::SubmitTasksRequest* req,
                                                           pb::SubmitTasksResponse* resp) {
  if (req->tasks_size() > kMaxBatch) {
    return finishNow(ctx, {grpc::StatusCode::INVALID_ARGUMENT, "a batch holds at most " + std::to_string(kMaxBatch) +
                                                                   " tasks, got " + std::to_string(req->tasks_size())});
  }
  std::vector<SubmitRequest> batch;
  batch.reserve(static_cast<std::size_t>(req->tasks_size()));
  std::vector<std::string> ids;  // as asked (empty: the daemon picks one)
  for (const auto& t : req->tasks()) {
    ids.push_back(t.id());
    SubmitRequest& s = batch.emplace_back();
    s.id = t.id();
    s.cls = t.class_();
    s.payload = Payload(t.payload().begin(), t.payload().end());
    s.priority = t.priority();
    s.workflow_id = t.workflow_id();
  }
  auto* reactor = ctx->DefaultReactor();
  engine_.submitBatch(std::move(batch), [reactor, resp, ids = std::move(ids)](std::vector<Result<std::string>> results) {
    int accepted = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      auto* out = resp->add_results();
      if (r) {
        out->set_success(true);
        out->set_task_id(r.value());
        ++accepted;
      } else {
        out->set_task_id(ids[i]);
        out->set_error(r.error());
        out->set_code(grpcCodeName(r.kind()));
      }
    }
    resp->set_accepted(accepted);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* OrchestratorService::GetTaskStatus(grpc::CallbackServerContext* ctx,
                                                             const pb::GetTaskStatusRequest* req,
                                                             pb::GetTaskStatusResponse* resp) {
  if (req->task_id().empty()) return finishNow(ctx, {grpc::StatusCode::INVALID_ARGUMENT, "task_id is required"});
  auto t = engine_.get(req->task_id());
  if (!t) return finishNow(ctx, toGrpc(t.fullError()));
  resp->set_task_id(t.value().id);
  resp->set_status(toString(t.value().status));
  for (const auto& [k, v] : t.value().result) (*resp->mutable_result())[k] = v;
  resp->set_error(t.value().error);
  fill(t.value(), resp->mutable_task());
  if (parts_.slurm_jobs != nullptr) {
    if (auto job = parts_.slurm_jobs->latestSlurmJob(t.value().id); job && job.value()) {
      const SlurmJobRecord& j = *job.value();
      auto* out = resp->mutable_slurm_job();
      out->set_job_id(j.job_id);
      out->set_status(slurmStatusWord(j.state));
      out->set_slurm_state(j.state);
      out->set_attempt(j.attempt);
      out->set_exit_code(j.exit_code);
      out->set_reason(j.reason);
      out->set_error(j.error);
      out->set_submit_time_ms(j.submit_ms);
      out->set_start_time_ms(j.start_ms);
      out->set_end_time_ms(j.end_ms);
      out->set_output_path(j.output_path);
      out->set_nodes(j.nodes);
      out->set_template_name(j.template_name);
    }
  }
  return finishNow(ctx, grpc::Status::OK);
}

grpc::ServerWriteReactor<pb::TaskResult>* OrchestratorService::StreamTaskResults(
    grpc::CallbackServerContext*, const pb::StreamTaskResultsRequest* req) {
  std::set<std::string> ids(req->task_ids().begin(), req->task_ids().end());
  for (const auto& id : ids) {
    if (Status s = validateTaskId(id); !s.ok()) return ProducerStream<pb::TaskResult>::failed(toGrpc(s.fullError()));
  }
  const bool include_completed = req->include_completed();
  const auto heartbeat = parts_.result_heartbeat;
  return new ProducerStream<pb::TaskResult>(
      [this, ids, include_completed, heartbeat](const ProducerStream<pb::TaskResult>::Write& write,
                                                std::stop_token stop) {
        std::vector<TaskRecord> snapshot;
        // Watching starts before the snapshot, so a task named before it is submitted
        // is reported once it is (the old server kept such streams open too).
        auto watch = engine_.watch(ids, include_completed, &snapshot);
        struct Unwatch {
          TaskEngine& e;
          std::shared_ptr<TaskWatch> w;
          ~Unwatch() { e.unwatch(w); }
        } guard{engine_, watch};
        std::set<std::string> open = ids;  // named tasks not finished yet (known or not)
        // The last state sent per task, as a rank that only grows along a task's life,
        // so that a repeat or an older state (a snapshot can be newer than a queued
        // change) is never sent.
        std::unordered_map<std::string, std::int64_t> sent;
        std::deque<std::string> finished;  // bounds `sent` on an all-task stream
        // Unfinished tasks' current state, re-sent as a heartbeat: old clients give up
        // after a second without a message.
        std::map<std::string, pb::TaskResult> unfinished;
        constexpr std::size_t kMaxHeartbeatTasks = 10'000;
        auto rank = [](const TaskRecord& t) -> std::int64_t {
          if (isTerminal(t.status)) return INT64_MAX;
          return (t.attempts + (t.status == TaskStatus::Pending ? 1 : 0)) * 10LL +
                 (t.status == TaskStatus::Running ? 1 : 0);
        };
        auto offer = [&](const TaskRecord& t, bool from_snapshot) {
          const std::int64_t r = rank(t);
          auto it = sent.find(t.id);
          if (it != sent.end() && it->second >= r) return true;
          sent[t.id] = r;
          pb::TaskResult msg = toResult(t);
          if (isTerminal(t.status)) {
            open.erase(t.id);
            unfinished.erase(t.id);
            if (ids.empty()) {
              finished.push_back(t.id);
              if (finished.size() > 100'000) {
                sent.erase(finished.front());
                finished.pop_front();
              }
            }
            if (from_snapshot && !include_completed) return true;
          } else if (unfinished.size() < kMaxHeartbeatTasks || unfinished.count(t.id)) {
            unfinished[t.id] = msg;
          }
          return write(msg);
        };
        for (const auto& t : snapshot) {
          if (!offer(t, true)) return grpc::Status::OK;
        }
        auto next_beat = std::chrono::steady_clock::now() + heartbeat;
        while (!ids.empty() ? !open.empty() : true) {
          auto changes = heartbeat.count() > 0 ? watch->next(stop, next_beat) : watch->next(stop);
          if (stop.stop_requested()) return grpc::Status::OK;
          for (const auto& t : changes) {
            if (!offer(t, false)) return grpc::Status::OK;
          }
          if (heartbeat.count() > 0 && std::chrono::steady_clock::now() >= next_beat) {
            for (const auto& [id, msg] : unfinished) {
              if (!write(msg)) return grpc::Status::OK;
            }
            next_beat = std::chrono::steady_clock::now() + heartbeat;
          }
        }
        return grpc::Status::OK;
      });
}

std::map<std::string, double> flattenMetrics(Metrics& metrics) {
  std::map<std::string, double> out;
  metrics.render();  // runs the scrape hooks so gauges are current
  for (const auto& family : metrics.registry().Collect()) {
    for (const auto& m : family.metric) {
      std::string key = family.name;
      if (!m.label.empty()) {
        key += "{";
        for (std::size_t i = 0; i < m.label.size(); ++i) {
          key += (i ? "," : "") + m.label[i].name + "=\"" + m.label[i].value + "\"";
        }
        key += "}";
      }
      double v = 0;
      switch (family.type) {
        case prometheus::MetricType::Counter: v = m.counter.value; break;
        case prometheus::MetricType::Gauge: v = m.gauge.value; break;
        case prometheus::MetricType::Untyped: v = m.untyped.value; break;
        case prometheus::MetricType::Histogram:
          out[family.name + "_count"] += static_cast<double>(m.histogram.sample_count);
          out[family.name + "_sum"] += m.histogram.sample_sum;
          continue;
        default: continue;
      }
      out[key] = v;
      if (!m.label.empty()) out[family.name] += v;
    }
  }
  return out;
}

std::map<std::string, double> legacyMetrics(const QueueStats& s, int gpus, int workflows) {
  std::map<std::string, double> out;
  std::int64_t running = 0, queued = 0;
  double wait_sum = 0, wait_n = 0, attempts = 0, failures = 0;
  for (const auto& [name, c] : s.classes) {
    running += c.inflight;
    queued += c.queued;
    attempts += static_cast<double>(c.recent_attempts);
    failures += static_cast<double>(c.recent_failures);
    if (name.rfind("gpu", 0) == 0) {
      wait_sum += c.recent_wait_seconds_sum;
      wait_n += static_cast<double>(c.recent_starts);
    }
  }
  out["tasks_tracked_total"] = static_cast<double>(s.submitted);
  out["tasks_pending"] = static_cast<double>(queued);
  out["tasks_running"] = static_cast<double>(running);
  out["tasks_completed"] = static_cast<double>(s.completed);
  out["gpu_wait_seconds"] = wait_n > 0 ? wait_sum / wait_n : 0.0;
  out["env_error_rate"] = attempts > 0 ? failures / attempts : 0.0;
  out["runner_gpu_total"] = gpus;
  out["workflows_total"] = workflows;
  return out;
}

grpc::ServerUnaryReactor* OrchestratorService::GetMetrics(grpc::CallbackServerContext* ctx,
                                                          const pb::GetMetricsRequest* req,
                                                          pb::MetricsResponse* resp) {
  auto all = flattenMetrics(metrics_);
  int workflows = 0;
  if (parts_.workflows != nullptr) {
    if (auto all_workflows = parts_.workflows->listWorkflows()) workflows = static_cast<int>(all_workflows.value().size());
  }
  for (const auto& [k, v] : legacyMetrics(engine_.stats(), env_manager_ ? env_manager_->gpuCount() : 0, workflows)) {
    all[k] = v;
  }
  std::set<std::string> wanted(req->metric_names().begin(), req->metric_names().end());
  for (const auto& [k, v] : all) {
    const std::string base = k.substr(0, k.find('{'));
    if (wanted.empty() || wanted.count(k) || wanted.count(base)) (*resp->mutable_metrics())[k] = v;
  }
  resp->set_timestamp(unixMillis() / 1000);
  return finishNow(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* OrchestratorService::Health(grpc::CallbackServerContext* ctx, const pb::HealthRequest*,
                                                      pb::HealthResponse* resp) {
  const HealthReport r = healthReport(parts_);
  resp->set_healthy(r.status != "down");
  resp->set_version(dspy::version());
  (*resp->mutable_services())["grpc"] = "serving";
  (*resp->mutable_services())["http"] = "serving";
  // The old server's keys, which old dashboards read.
  (*resp->mutable_services())["grpc_server"] = "serving";
  (*resp->mutable_services())["orchestrator"] = r.status == "down" ? "unhealthy" : "healthy";
  for (const auto& [k, v] : r.components) (*resp->mutable_services())[k] = v;
  return finishNow(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* OrchestratorService::CancelTask(grpc::CallbackServerContext* ctx,
                                                          const pb::CancelTaskRequest* req,
                                                          pb::CancelTaskResponse* resp) {
  if (Status s = validateTaskId(req->task_id()); !s.ok()) return finishNow(ctx, toGrpc(s.fullError()));
  if (Status s = engine_.cancel(req->task_id()); !s.ok()) return finishNow(ctx, toGrpc(s.fullError()));
  auto t = engine_.get(req->task_id());
  resp->set_success(true);
  resp->set_status(t ? toString(t.value().status) : "");
  return finishNow(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* OrchestratorService::ListTasks(grpc::CallbackServerContext* ctx,
                                                         const pb::ListTasksRequest* req,
                                                         pb::ListTasksResponse* resp) {
  auto f = makeFilter(req->status(), req->class_(), req->workflow_id(), req->page_size(), req->page_token());
  if (!f) return finishNow(ctx, toGrpc(f.fullError()));
  auto rows = engine_.list(f.value());
  if (!rows) return finishNow(ctx, toGrpc(rows.fullError()));
  for (const auto& t : rows.value()) fill(t, resp->add_tasks());
  if (static_cast<int>(rows.value().size()) == f.value().limit) {
    resp->set_next_page_token(std::to_string(rows.value().back().seq));
  }
  return finishNow(ctx, grpc::Status::OK);
}

}  // namespace dspy::orchestrator
