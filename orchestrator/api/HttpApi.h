// The orchestrator's HTTP task API on port 9097 (the old system's routes and ours).
#pragma once

#include "common/HttpServer.h"
#include "orchestrator/scheduler/TaskEngine.h"
#include "orchestrator/workflows/WorkflowEngine.h"

namespace dspy::orchestrator {

// Registers /queue/submit, /queue/status, /tasks, /tasks/{id}, /tasks/{id}/cancel.
void registerHttpApi(HttpServer& http, TaskEngine& engine);
// /workflows and /workflow-runs (WorkflowHttp.cc).
void registerWorkflowHttp(HttpServer& http, WorkflowEngine& flows);

}  // namespace dspy::orchestrator
