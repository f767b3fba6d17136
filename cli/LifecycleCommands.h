// dspy-agent start | stop | restart: the whole system. Through systemd when the units are
// installed and systemd runs (dspy-agent.target), else both daemons in the background
// with PID and log files; then the services through env-manager.
#pragma once

namespace CLI {
class App;
}  // namespace CLI

namespace dspy::cli {

void addLifecycleCommands(CLI::App& app, int* exit_code);

}  // namespace dspy::cli
