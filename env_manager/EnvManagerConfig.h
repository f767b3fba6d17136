// EnvManagerConfig: everything env-manager reads from its YAML file and environment.
#pragma once

#include <string>

#include "common/ConfigSchema.h"
#include "common/Result.h"
#include "common/ServerConfig.h"

namespace dspy::envmanager {

struct EnvManagerConfig {
  ServerConfig server = ServerConfig::withAddresses("127.0.0.1:50100", "127.0.0.1:50101");
};

// Describes every key; exposed so `dspy-agent config keys` and tests can list them.
void describe(config::Schema& schema, EnvManagerConfig& cfg);
Result<EnvManagerConfig> loadConfig(const std::string& file, const config::EnvLookup& env);

}  // namespace dspy::envmanager
