// EnvManagerService: the nine RPCs of env_manager.v1 on top of the lifecycle engine,
// the task runner and the Docker client. Bad arguments get INVALID_ARGUMENT or
// NOT_FOUND with a message before anything changes.
#pragma once

#include <memory>

#include "common/WorkerPool.h"
#include "env_manager/docker/DockerApi.h"
#include "env_manager/lifecycle/Lifecycle.h"
#include "env_manager/tasks/TaskRunner.h"
#include "env_manager/v1/env_manager.grpc.pb.h"

namespace dspy::envmanager {

class EnvManagerService final : public env_manager::v1::EnvManagerService::CallbackService {
 public:
  // Blocking work of unary calls (Docker calls, stops, task containers) runs on a pool
  // of at most `blocking_threads` threads; at most `blocking_queue` calls wait for one,
  // more are refused with RESOURCE_EXHAUSTED instead of piling up threads.
  struct Limits {
    int blocking_threads = 64;
    int blocking_queue = 1024;
  };
  EnvManagerService(Lifecycle& lifecycle, TaskRunner& tasks, docker::DockerApi& docker, Limits limits);
  EnvManagerService(Lifecycle& lifecycle, TaskRunner& tasks, docker::DockerApi& docker)
      : EnvManagerService(lifecycle, tasks, docker, Limits{}) {}

  grpc::ServerWriteReactor<env_manager::v1::ServiceStatusUpdate>* StartServices(
      grpc::CallbackServerContext* ctx, const env_manager::v1::StartServicesRequest* req) override;
  grpc::ServerUnaryReactor* StopServices(grpc::CallbackServerContext* ctx, const env_manager::v1::StopServicesRequest* req,
                                         env_manager::v1::StopServicesResponse* resp) override;
  grpc::ServerUnaryReactor* RestartService(grpc::CallbackServerContext* ctx,
                                           const env_manager::v1::RestartServiceRequest* req,
                                           env_manager::v1::RestartServiceResponse* resp) override;
  grpc::ServerUnaryReactor* GetServicesStatus(grpc::CallbackServerContext* ctx,
                                              const env_manager::v1::GetServicesStatusRequest* req,
                                              env_manager::v1::ServicesStatusResponse* resp) override;
  grpc::ServerWriteReactor<env_manager::v1::HealthUpdate>* StreamHealth(
      grpc::CallbackServerContext* ctx, const env_manager::v1::StreamHealthRequest* req) override;
  grpc::ServerUnaryReactor* GetResourceAvailability(grpc::CallbackServerContext* ctx,
                                                    const env_manager::v1::GetResourceAvailabilityRequest* req,
                                                    env_manager::v1::ResourceAvailabilityResponse* resp) override;
  grpc::ServerUnaryReactor* ExecuteTask(grpc::CallbackServerContext* ctx, const env_manager::v1::ExecuteTaskRequest* req,
                                        env_manager::v1::ExecuteTaskResponse* resp) override;
  grpc::ServerWriteReactor<env_manager::v1::ImagePullProgress>* PullImages(
      grpc::CallbackServerContext* ctx, const env_manager::v1::PullImagesRequest* req) override;
  grpc::ServerWriteReactor<env_manager::v1::LogEntry>* StreamLogs(grpc::CallbackServerContext* ctx,
                                                                   const env_manager::v1::StreamLogsRequest* req) override;

 private:
  // Runs blocking work off the gRPC threads and finishes the unary call when done.
  grpc::ServerUnaryReactor* offload(grpc::CallbackServerContext* ctx, std::function<grpc::Status()> work);
  // One service's health as StreamHealth reports it, from the lifecycle and the monitor.
  env_manager::v1::HealthUpdate healthUpdate(const std::string& service) const;

  Lifecycle& lifecycle_;
  TaskRunner& tasks_;
  docker::DockerApi& docker_;
  HardwareSummary hardware_;
  WorkerPool blocking_;  // last: its destructor waits for the jobs, which use the rest
};

}  // namespace dspy::envmanager
