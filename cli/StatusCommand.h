// `dspy-agent status`: daemons, services, queue depths and limits at a glance.
#pragma once

namespace CLI {
class App;
}  // namespace CLI

namespace dspy::cli {

void addStatusCommand(CLI::App& app, int* exit_code);

}  // namespace dspy::cli
