// OrchestratorConfig: everything the orchestrator reads from its YAML file and environment.
#pragma once

#include <string>

#include "common/ConfigSchema.h"
#include "common/Result.h"
#include "common/ServerConfig.h"

namespace dspy::orchestrator {

struct OrchestratorConfig {
  ServerConfig server = ServerConfig::withAddresses("127.0.0.1:50052", "127.0.0.1:9097");
};

void describe(config::Schema& schema, OrchestratorConfig& cfg);
Result<OrchestratorConfig> loadConfig(const std::string& file, const config::EnvLookup& env);

}  // namespace dspy::orchestrator
