// `dspy-agent config validate | show | init | keys`.
#pragma once

namespace CLI {
class App;
}  // namespace CLI

namespace dspy::cli {

void addConfigCommands(CLI::App& app, int* exit_code);

}  // namespace dspy::cli
