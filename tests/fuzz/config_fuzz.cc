// libFuzzer target: the daemons' config files. The input is a config file's text,
// optionally followed by a NUL byte and environment lines (NAME=value) that the loader
// sees as the process environment; the first byte picks the daemon (even: env-manager,
// odd: orchestrator). Every input must load or be refused with a message; never crash,
// hang or leak. Paths the file names are not opened here (the daemons open them later).
// Build and run: scripts/fuzz.sh config [seconds]   (seeds: tests/fuzz/config/).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "common/ConfigSchema.h"
#include "env_manager/EnvManagerConfig.h"
#include "orchestrator/OrchestratorConfig.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool orchestrator = (data[0] & 1) != 0;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::map<std::string, std::string> vars;
  if (auto nul = text.find('\0'); nul != std::string::npos) {
    std::string env = text.substr(nul + 1);
    text.resize(nul);
    std::size_t pos = 0;
    while (pos <= env.size()) {
      std::size_t end = env.find('\n', pos);
      if (end == std::string::npos) end = env.size();
      std::string line = env.substr(pos, end - pos);
      if (auto eq = line.find('='); eq != std::string::npos && eq > 0) vars[line.substr(0, eq)] = line.substr(eq + 1);
      pos = end + 1;
    }
  }
  const auto env = dspy::config::mapEnv(vars);
  dspy::config::Schema schema;
  if (orchestrator) {
    dspy::orchestrator::OrchestratorConfig cfg;
    dspy::orchestrator::describe(schema, cfg);
    (void)schema.loadText(text, "fuzz-orchestrator.yaml", env);
  } else {
    dspy::envmanager::EnvManagerConfig cfg;
    dspy::envmanager::describe(schema, cfg, "/nonexistent");
    (void)schema.loadText(text, "fuzz-env-manager.yaml", env);
  }
  return 0;
}
