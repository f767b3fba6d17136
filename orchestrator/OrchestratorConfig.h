// OrchestratorConfig: everything the orchestrator reads from its YAML file and environment.
#pragma once

#include <string>
#include <vector>

#include "common/ConfigSchema.h"
#include "common/Result.h"
#include "common/ServerConfig.h"
#include "orchestrator/envmanager/EnvManagerClient.h"
#include "orchestrator/executors/ProcessExecutor.h"
#include "orchestrator/scheduler/TaskEngine.h"
#include "orchestrator/store/SqliteTaskStore.h"

namespace dspy::orchestrator {

struct StoreConfig {
  std::string dir = "/var/lib/dspy-agent/orchestrator";  // ENV_QUEUE_DIR
  std::string sync = "normal";                           // normal | full
  int max_batch = 1024;
  SyncMode mode() const { return sync == "full" ? SyncMode::Full : SyncMode::Normal; }
};

struct OrchestratorConfig {
  OrchestratorConfig();
  ServerConfig server = ServerConfig::withAddresses("127.0.0.1:50052", "127.0.0.1:9097");
  StoreConfig store;
  EngineConfig engine;
  ProcessExecutorConfig process;
  std::string runner_url;  // ENV_RUNNER_URL, for the http executor
  EnvManagerLinkConfig env_manager;
};

void describe(config::Schema& schema, OrchestratorConfig& cfg);
Result<OrchestratorConfig> loadConfig(const std::string& file, const config::EnvLookup& env);

}  // namespace dspy::orchestrator
