// Parsing a command line with CLI11 the same way in every program of the project.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>

namespace dspy {

// Parses argv into `app` (running the chosen subcommands' callbacks). nullopt: go on;
// otherwise the exit code: 0 after --help or --version (printed), 2 for bad usage
// (the message and a hint printed to stderr).
inline std::optional<int> parseCommandLine(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return 2;
  }
  return std::nullopt;
}

}  // namespace dspy
