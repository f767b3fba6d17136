// env-manager config keys and the environment variables operators already use.
#include "env_manager/EnvManagerConfig.h"

namespace dspy::envmanager {

void describe(config::Schema& schema, EnvManagerConfig& cfg) {
  describeServerConfig(schema, cfg.server,
                       ServerEnvNames{"ENV_MANAGER_GRPC_ADDR", "ENV_MANAGER_METRICS_ADDR", "ENV_MANAGER_VERBOSE"});
}

Result<EnvManagerConfig> loadConfig(const std::string& file, const config::EnvLookup& env) {
  EnvManagerConfig cfg;
  config::Schema schema;
  describe(schema, cfg);
  if (Status s = schema.load(file, env); !s.ok()) return Error{s.error()};
  return cfg;
}

}  // namespace dspy::envmanager
