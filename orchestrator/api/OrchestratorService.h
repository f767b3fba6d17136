// OrchestratorService: the orchestrator.v1 gRPC service and the HTTP API on port 9097,
// both thin layers over the TaskEngine.
#pragma once

#include <memory>

#include "common/DaemonRuntime.h"
#include "orchestrator/envmanager/EnvManagerClient.h"
#include "orchestrator/scheduler/TaskEngine.h"
#include "orchestrator/v1/orchestrator.grpc.pb.h"

namespace dspy::orchestrator {

// What the orchestrator's parts look like from outside, for Health and /health.
HealthReport healthReport(TaskEngine& engine, EnvManagerClient* env_manager);

class OrchestratorService final : public ::orchestrator::v1::OrchestratorService::CallbackService {
 public:
  OrchestratorService(TaskEngine& engine, EnvManagerClient* env_manager, Metrics& metrics)
      : engine_(engine), env_manager_(env_manager), metrics_(metrics) {}

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
  TaskEngine& engine_;
  EnvManagerClient* env_manager_;
  Metrics& metrics_;
};

// Registers /queue/submit, /queue/status, /tasks, /tasks/{id}, /tasks/{id}/cancel.
void registerHttpApi(HttpServer& http, TaskEngine& engine);

// The flat name -> value view of the registry that GetMetrics answers with: a series
// without labels under its name, a labelled one as name{k="v",...} and, summed over
// its labels, under its bare name too; histograms as name_count and name_sum.
std::map<std::string, double> flattenMetrics(Metrics& metrics);

}  // namespace dspy::orchestrator
