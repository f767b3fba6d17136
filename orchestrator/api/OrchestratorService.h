// OrchestratorService: the orchestrator.v1 gRPC service, a thin layer over the
// TaskEngine (the HTTP API is in HttpApi.h).
#pragma once

#include <chrono>
#include <map>
#include <memory>

#include "common/DaemonRuntime.h"
#include "common/WorkerPool.h"
#include "orchestrator/envmanager/EnvManagerClient.h"
#include "orchestrator/events/EventHub.h"
#include "orchestrator/events/KafkaRelay.h"
#include "orchestrator/executors/HttpExecutor.h"
#include "orchestrator/scheduler/TaskEngine.h"
#include "orchestrator/slurm/SlurmExecutor.h"
#include "orchestrator/workflows/WorkflowEngine.h"
#include "orchestrator/v1/orchestrator.grpc.pb.h"

namespace dspy::orchestrator {

// The parts the API layer looks at.
struct ServiceParts {
  TaskEngine& engine;
  WorkflowEngine* workflows = nullptr;
  EnvManagerClient* env_manager = nullptr;  // null when nothing uses env-manager
  const HttpExecutor* runner = nullptr;     // null when no class uses the env-runner
  // StreamTaskResults re-sends each unfinished watched task this often (0 = never).
  std::chrono::milliseconds result_heartbeat{1000};
  EventLog* events = nullptr;  // the outbox (StreamEvents replays from it)
  EventHub* hub = nullptr;     // live events
  KafkaRelay* relay = nullptr; // null when Kafka is not configured
  std::int64_t kafka_degraded_depth = 100'000;
  SlurmExecutor* slurm = nullptr;        // null when no class runs on Slurm
  SlurmJobStore* slurm_jobs = nullptr;   // the tasks' Slurm job rows
};

// What the orchestrator's parts look like from outside, for Health and /health.
HealthReport healthReport(const ServiceParts& parts);

// The metrics the old orchestrator's GetMetrics always carried, computed from the
// engine (docs/api.md gives each one's meaning). `gpus` is what env-manager reports,
// `workflows` how many workflows are defined.
std::map<std::string, double> legacyMetrics(const QueueStats& stats, int gpus, int workflows);

class OrchestratorService final : public ::orchestrator::v1::OrchestratorService::CallbackService {
 public:
  OrchestratorService(ServiceParts parts, Metrics& metrics)
      : parts_(parts), engine_(parts.engine), env_manager_(parts.env_manager), metrics_(metrics),
        blocking_(WorkerPool::Limits{.max_threads = 16, .max_queued = 1024}) {}

  grpc::ServerUnaryReactor* SubmitTask(grpc::CallbackServerContext* ctx, const ::orchestrator::v1::SubmitTaskRequest* req,
                                       ::orchestrator::v1::SubmitTaskResponse* resp) override;
  grpc::ServerUnaryReactor* SubmitTasks(grpc::CallbackServerContext* ctx, const ::orchestrator::v1::SubmitTasksRequest* req,
                                        ::orchestrator::v1::SubmitTasksResponse* resp) override;
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

  // Workflows (WorkflowRpcs.cc).
  grpc::ServerUnaryReactor* CreateWorkflow(grpc::CallbackServerContext* ctx,
                                           const ::orchestrator::v1::CreateWorkflowRequest* req,
                                           ::orchestrator::v1::CreateWorkflowResponse* resp) override;
  grpc::ServerUnaryReactor* StartWorkflowRun(grpc::CallbackServerContext* ctx,
                                             const ::orchestrator::v1::StartWorkflowRunRequest* req,
                                             ::orchestrator::v1::StartWorkflowRunResponse* resp) override;
  grpc::ServerWriteReactor<::orchestrator::v1::WorkflowStatusUpdate>* StreamWorkflowStatus(
      grpc::CallbackServerContext* ctx, const ::orchestrator::v1::StreamWorkflowStatusRequest* req) override;
  grpc::ServerUnaryReactor* GetWorkflowRun(grpc::CallbackServerContext* ctx,
                                           const ::orchestrator::v1::GetWorkflowRunRequest* req,
                                           ::orchestrator::v1::WorkflowRunInfo* resp) override;
  grpc::ServerUnaryReactor* ListWorkflows(grpc::CallbackServerContext* ctx,
                                          const ::orchestrator::v1::ListWorkflowsRequest* req,
                                          ::orchestrator::v1::ListWorkflowsResponse* resp) override;
  grpc::ServerUnaryReactor* ListWorkflowRuns(grpc::CallbackServerContext* ctx,
                                             const ::orchestrator::v1::ListWorkflowRunsRequest* req,
                                             ::orchestrator::v1::ListWorkflowRunsResponse* resp) override;
  grpc::ServerUnaryReactor* CancelWorkflowRun(grpc::CallbackServerContext* ctx,
                                              const ::orchestrator::v1::CancelWorkflowRunRequest* req,
                                              ::orchestrator::v1::CancelWorkflowRunResponse* resp) override;

  // Events (EventRpcs.cc).
  grpc::ServerWriteReactor<::orchestrator::v1::SystemEvent>* StreamEvents(
      grpc::CallbackServerContext* ctx, const ::orchestrator::v1::StreamEventsRequest* req) override;

 private:
  ServiceParts parts_;
  TaskEngine& engine_;
  EnvManagerClient* env_manager_;
  Metrics& metrics_;
  WorkerPool blocking_;  // workflow calls that wait for the store, off the gRPC threads
};

// The flat name -> value view of the registry that GetMetrics answers with: a series
// without labels under its name, a labelled one as name{k="v",...} and, summed over
// its labels, under its bare name too; histograms as name_count and name_sum.
std::map<std::string, double> flattenMetrics(Metrics& metrics);

}  // namespace dspy::orchestrator
