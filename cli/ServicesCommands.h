// `dspy-agent services ...`: drive env-manager's stack over gRPC.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/Result.h"

namespace CLI {
class App;
}  // namespace CLI

namespace dspy::cli {

// Adds `services` and its commands to `app`; the command that runs sets *exit_code:
// 0 ok, 1 the operation failed, 2 bad usage.
void addServicesCommands(CLI::App& app, int* exit_code);

// StartServices of `names` (all when empty) at env-manager's gRPC `addr`, showing each
// step (a live board on a terminal; JSON lines with `json`); 0 when every one came up,
// 1 otherwise (also when env-manager is not reachable).
int startServicesAt(const std::string& addr, const std::vector<std::string>& names, bool json);
// StopServices of `names` (all when empty), dependents first; prints the results, or
// puts {"ok", "services"} into *out when `out` is given.
int stopServicesAt(const std::string& addr, const std::vector<std::string>& names, int timeout_seconds,
                   nlohmann::json* out);
// A service's container logs (StreamLogs): the last `tail` lines (0 = all) since `since`
// (unix seconds, 0 = the start), then new ones while `follow`.
int serviceLogsAt(const std::string& addr, const std::string& name, bool follow, int tail, std::int64_t since,
                  bool json);
// PullImages of `images` (every image the services need when empty) with progress.
int pullImagesAt(const std::string& addr, const std::vector<std::string>& images, bool json);
// Every service's {status, state, required, message}, by name.
Result<nlohmann::json> servicesStatusAt(const std::string& addr);

}  // namespace dspy::cli
