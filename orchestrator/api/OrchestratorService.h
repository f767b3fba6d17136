// OrchestratorService: the orchestrator.v1 gRPC service, a thin layer over the
// TaskEngine (the HTTP API is in HttpApi.h).
#pragma once

#include <chrono>
#include <map>
#include <memory>

#include "common/DaemonRuntime.h"
#include "orchestrator/envmanager/EnvManagerClient.h"
#include "orchestrator/executors/HttpExecutor.h"
#include "orchestrator/scheduler/TaskEngine.h"
#include "orchestrator/v1/orchestrator.grpc.pb.h"

namespace dspy::orchestrator {

// The parts the API layer looks at.
struct ServiceParts {
  TaskEngine& engine;
  EnvManagerClient* env_manager = nullptr;  // null when nothing uses env-manager
  const HttpExecutor* runner = nullptr;     // null when no class uses the env-runner
  // StreamTaskResults re-sends each unfinished watched task this often (0 = never).
  std::chrono::milliseconds result_heartbeat{1000};
};

// What the orchestrator's parts look like from outside, for Health and /health.
HealthReport healthReport(const ServiceParts& parts);

// The metrics the old orchestrator's GetMetrics always carried, computed from the
// engine (docs/api.md gives each one's meaning). `gpus` is what env-manager reports.
std::map<std::string, double> legacyMetrics(const QueueStats& stats, int gpus);

class OrchestratorService final : public ::orchestrator::v1::OrchestratorService::CallbackService {
 public:
  OrchestratorService(ServiceParts parts, Metrics& metrics)
      : parts_(parts), engine_(parts.engine), env_manager_(parts.env_manager), metrics_(metrics) {}

  grpc::ServerUnaryReactor* SubmitTask(grpc::CallbackServerContext* ctx, const ::orchestrator::v1::SubmitTaskRequest* req,
                                       ::orchestrator::v1::SubmitTaskResponse* resp) override;
  grpc::ServerUnaryReactor* GetTaskStatus(grpc::CallbackServerContext* ctx,
                                          const ::orchestrator::v1::GetTaskStatusRequest* req,
                                          ::orchestrator::v1::GetTaskStatusResponse* resp) override;
  grpc::ServerWriteReactor<::orchestrator::v1::TaskResult>* StreamTaskResults(
      grpc::CallbackServerContext* ctx, const ::orchestrator::v1::StreamTaskResultsRequest* req) override;
  grpc::ServerUnaryReactor* GetMetrics(grpc::CallbackServerContext* ctx, const ::orchestrator::v1::GetMetricsRequest* req,
                                       ::orchestrator::v1::MetricsResponse* resp) override;
  grpc::ServerUnaryReactor* Health(grpc::CallbackServerContext* ctx, const ::orchestrator::v1::HealthRequest* req,
                                   ::orchestrator::v1::HealthResponse* resp) override;
  grpc::ServerUnaryReactor* CancelTask(grpc::CallbackServerContext* ctx, const ::orchestrator::v1::CancelTaskRequest* req,
                                       ::orchestrator::v1::CancelTaskResponse* resp) override;
  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext* ctx, const ::orchestrator::v1::ListTasksRequest* req,
                                      ::orchestrator::v1::ListTasksResponse* resp) override;

 private:
  ServiceParts parts_;
  TaskEngine& engine_;
  EnvManagerClient* env_manager_;
  Metrics& metrics_;
};

// The flat name -> value view of the registry that GetMetrics answers with: a series
// without labels under its name, a labelled one as name{k="v",...} and, summed over
// its labels, under its bare name too; histograms as name_count and name_sum.
std::map<std::string, double> flattenMetrics(Metrics& metrics);

}  // namespace dspy::orchestrator
