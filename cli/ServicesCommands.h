// `dspy-agent services ...`: drive env-manager's stack over gRPC.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace dspy::cli {

// Adds `services` and its commands to `app`; the command that runs sets *exit_code:
// 0 ok, 1 the operation failed, 2 bad usage.
void addServicesCommands(CLI::App& app, int* exit_code);

// StartServices of `names` (all when empty) at env-manager's gRPC `addr`, printing each
// step; 0 when every one came up, 1 otherwise (also when env-manager is not reachable).
int startServicesAt(const std::string& addr, const std::vector<std::string>& names);
// StopServices of `names` (all when empty), dependents first.
int stopServicesAt(const std::string& addr, const std::vector<std::string>& names, int timeout_seconds);
// A service's container logs (StreamLogs): the last `tail` lines (0 = all) since `since`
// (unix seconds, 0 = the start), then new ones while `follow`.
int serviceLogsAt(const std::string& addr, const std::string& name, bool follow, int tail, std::int64_t since);

}  // namespace dspy::cli
