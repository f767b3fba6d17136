// `dspy-agent workflows ...`: create, run, show, watch, list and cancel workflows and
// their runs over gRPC.
#pragma once

namespace CLI {
class App;
}  // namespace CLI

namespace dspy::cli {

// Adds `workflows` and its commands to `app`; the command that runs sets *exit_code:
// 0 ok, 1 the operation (or the run) failed, 2 bad usage.
void addWorkflowsCommands(CLI::App& app, int* exit_code);

}  // namespace dspy::cli
