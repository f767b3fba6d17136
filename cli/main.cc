// dspy-agent: the operators' command line for both daemons.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "cli/ConfigCommands.h"
#include "cli/EventsCommands.h"
#include "cli/LifecycleCommands.h"
#include "cli/ServicesCommands.h"
#include "cli/StatusCommand.h"
#include "cli/StoreCommands.h"
#include "cli/TasksCommands.h"
#include "cli/Terminal.h"
#include "cli/WorkflowsCommands.h"
#include "common/CommandLine.h"

int main(int argc, char** argv) {
  CLI::App app{"dspy-agent: the operators' command line for env-manager and the orchestrator"};
  app.require_subcommand(1);
  app.fallthrough();  // --no-color may come anywhere; subcommands inherit this
  app.set_version_flag("--version", std::string("dspy-agent ") + DSPY_VERSION);
  app.footer(
      "Addresses: flags, else $ENV_MANAGER_ADDR / $ORCHESTRATOR_ADDR (gRPC), else the daemons' config files "
      "($ENV_MANAGER_CONFIG / $ORCHESTRATOR_CONFIG, else /etc/dspy-agent/*.yaml), else the defaults.\n"
      "Colour only on a terminal, never with --no-color or $NO_COLOR.\n"
      "Exit codes: 0 ok, 1 something is unhealthy, failed or invalid, 2 bad usage.");
  int exit_code = 0;
  bool no_color = false;
  app.add_flag("--no-color", no_color, "no colour, also on a terminal");
  app.parse_complete_callback([&no_color] { dspy::cli::setNoColor(no_color); });

  dspy::cli::addStatusCommand(app, &exit_code);
  dspy::cli::addServicesCommands(app, &exit_code);
  dspy::cli::addTasksCommands(app, &exit_code);
  dspy::cli::addWorkflowsCommands(app, &exit_code);
  dspy::cli::addEventsCommand(app, &exit_code);
  dspy::cli::addStoreCommands(app, &exit_code);
  dspy::cli::addLifecycleCommands(app, &exit_code);
  dspy::cli::addConfigCommands(app, &exit_code);

  CLI::App* c = app.add_subcommand("version", "print the CLI version");
  c->callback([] { std::printf("dspy-agent %s\n", DSPY_VERSION); });

  if (auto code = dspy::parseCommandLine(app, argc, argv)) return *code;
  return exit_code;
}
