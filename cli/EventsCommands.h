// `dspy-agent events`: the orchestrator's events (StreamEvents), replayed from a time and
// optionally followed live, filtered by type, as text lines or JSON lines.
#pragma once

namespace CLI {
class App;
}  // namespace CLI

namespace dspy::cli {

// Adds `events` to `app`; the command sets *exit_code (0 ok, 1 failed, 2 bad usage).
void addEventsCommand(CLI::App& app, int* exit_code);

}  // namespace dspy::cli
