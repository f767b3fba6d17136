// TaskViews: how a task and a task listing look to clients, shared by the gRPC service
// and the HTTP API so that both say the same.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/Result.h"
#include "orchestrator/store/TaskStore.h"
#include "orchestrator/tasks/Task.h"

namespace dspy::orchestrator {

// The last attempt's run time so far (ms); 0 before the first start.
double durationMs(const TaskRecord& t);
// The task as JSON (GET /tasks/{id}, GET /tasks).
nlohmann::json toJson(const TaskRecord& t);
// A listing filter from request fields; INVALID_ARGUMENT naming the bad one.
Result<TaskFilter> makeFilter(const std::string& status, const std::string& cls, const std::string& workflow_id,
                              std::int64_t limit, const std::string& token);

}  // namespace dspy::orchestrator
