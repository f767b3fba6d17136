// `dspy-agent tasks ...`: submit, inspect, list and cancel orchestrator tasks over gRPC.
#pragma once

namespace CLI {
class App;
}  // namespace CLI

namespace dspy::cli {

// Adds `tasks` and its commands to `app`; the command that runs sets *exit_code:
// 0 ok, 1 the operation failed, 2 bad usage.
void addTasksCommands(CLI::App& app, int* exit_code);

}  // namespace dspy::cli
