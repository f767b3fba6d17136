// How workflows and runs look from outside: the contract's JSON shapes (section 3 and
// 4) for HTTP, and the status words of WorkflowStatusUpdate.
#pragma once

#include <nlohmann/json.hpp>

#include "common/Text.h"

#include "orchestrator/workflows/WorkflowEngine.h"

namespace dspy::orchestrator {

// {id, name, description, tags, tenant, version, updated_at, node_count, edge_count}
nlohmann::json workflowSummary(const WorkflowRecord& w);
// The run record: {id, workflow_id, workflow_name, workflow_version, status, created_at,
// updated_at, completed_at?, steps: [...], input, metadata, idempotency_key}. `spec`
// (may be null) names the steps' types and actions.
nlohmann::json runJson(const RunRecord& r, const WorkflowSpec* spec);
// WorkflowStatusUpdate's words: pending, running, completed, failed, cancelled.
const char* updateStatus(RunStatus s);
// What a step does, for the run record's `action`: "task:<class>", "event:<type>",
// "services", "slurm".
std::string stepAction(const NodeSpec& node);

}  // namespace dspy::orchestrator
