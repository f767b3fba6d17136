// `dspy-agent services ...`: drive env-manager's stack over gRPC.
#pragma once

#include <string>
#include <vector>

namespace dspy::cli {

// Returns the process exit code: 0 ok, 1 the operation failed, 2 bad usage.
int servicesCommand(const std::vector<std::string>& args);

}  // namespace dspy::cli
