// `dspy-agent services ...`: drive env-manager's stack over gRPC.
#pragma once

namespace CLI {
class App;
}  // namespace CLI

namespace dspy::cli {

// Adds `services` and its commands to `app`; the command that runs sets *exit_code:
// 0 ok, 1 the operation failed, 2 bad usage.
void addServicesCommands(CLI::App& app, int* exit_code);

}  // namespace dspy::cli
