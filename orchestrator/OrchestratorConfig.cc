// Orchestrator config keys and the environment variables operators already use.
#include "orchestrator/OrchestratorConfig.h"

namespace dspy::orchestrator {

void describe(config::Schema& schema, OrchestratorConfig& cfg) {
  describeServerConfig(schema, cfg.server,
                       ServerEnvNames{"ORCHESTRATOR_GRPC_ADDR", "ORCHESTRATOR_HTTP_ADDR", "ORCHESTRATOR_VERBOSE"});
}

Result<OrchestratorConfig> loadConfig(const std::string& file, const config::EnvLookup& env) {
  OrchestratorConfig cfg;
  config::Schema schema;
  describe(schema, cfg);
  if (Status s = schema.load(file, env); !s.ok()) return Error{s.error()};
  return cfg;
}

}  // namespace dspy::orchestrator
