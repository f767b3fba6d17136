// `dspy-agent tasks ...`: submit, inspect, list and cancel orchestrator tasks over gRPC.
#pragma once

#include <string>
#include <vector>

namespace dspy::cli {

// Returns the process exit code: 0 ok, 1 the operation failed, 2 bad usage.
int tasksCommand(const std::vector<std::string>& args);

}  // namespace dspy::cli
