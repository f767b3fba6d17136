// The orchestrator's HTTP task API on port 9097 (the old system's routes and ours).
#pragma once

#include "common/HttpServer.h"
#include <nlohmann/json.hpp>

#include "orchestrator/scheduler/TaskEngine.h"
#include "orchestrator/slurm/SlurmExecutor.h"
#include "orchestrator/workflows/WorkflowEngine.h"

namespace dspy::orchestrator {

// Registers /queue/submit, /queue/status, /tasks, /tasks/{id}, /tasks/{id}/cancel and
// /slurm/status/{task_id}. `slurm` is null when no class runs on Slurm.
void registerHttpApi(HttpServer& http, TaskEngine& engine, SlurmExecutor* slurm, SlurmJobStore& jobs);
// The contract's JSON of a Slurm job.
nlohmann::json slurmJobJson(const SlurmJobRecord& job);
// /workflows and /workflow-runs (WorkflowHttp.cc).
void registerWorkflowHttp(HttpServer& http, WorkflowEngine& flows);

class EventLog;
class EventHub;
class EnvManagerClient;
// The web page at /ui/ and its routes /ui/api/* (UiHttp.cc).
void registerUiHttp(HttpServer& http, EventLog& log, EventHub& hub, EnvManagerClient& env_manager);

}  // namespace dspy::orchestrator
