// OrchestratorConfig: everything the orchestrator reads from its YAML file and environment.
#pragma once

#include <string>
#include <vector>

#include "common/ConfigSchema.h"
#include "common/Result.h"
#include "common/ServerConfig.h"
#include "orchestrator/envmanager/EnvManagerClient.h"
#include "orchestrator/events/KafkaRelay.h"
#include "orchestrator/slurm/SlurmExecutor.h"
#include "orchestrator/executors/ProcessExecutor.h"
#include "orchestrator/scheduler/TaskEngine.h"
#include "orchestrator/workflows/WorkflowEngine.h"
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
  // ENV_RUNNER_URL, for the http executor; the old orchestrator's default.
  std::string runner_url = "http://localhost:8083";
  // Result streams re-send each unfinished watched task's state this often (0 = never):
  // old clients treat a second without a message as a timeout.
  std::int64_t result_heartbeat_ms = 1000;
  // tasks.default_class as written: "auto", "" (refuse unknown classes) or a class name;
  // resolved into engine.default_class.
  std::string default_class = "auto";
  EnvManagerLinkConfig env_manager;
  WorkflowConfig workflows;
  KafkaConfig kafka;
  EventsConfig events;
  SlurmConfig slurm;
};

// Checks a Kafka broker list ("host:port,host:port", each optionally with a
// PLAINTEXT:// or SSL:// style prefix); the error names the bad entry.
Status validateBrokers(const std::string& brokers);

void describe(config::Schema& schema, OrchestratorConfig& cfg);
Result<OrchestratorConfig> loadConfig(const std::string& file, const config::EnvLookup& env);

}  // namespace dspy::orchestrator
