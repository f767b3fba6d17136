// dspy-agent backup FILE / restore FILE: the orchestrator's store (see StoreBackup.h).
#pragma once

#include <CLI/CLI.hpp>

namespace dspy::cli {

void addStoreCommands(CLI::App& app, int* exit_code);

}  // namespace dspy::cli
