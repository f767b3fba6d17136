// The daemons' addresses as the CLI resolves them.
#include "cli/Addresses.h"

#include <cstdlib>
#include <filesystem>

#include "common/ConfigSchema.h"
#include "env_manager/EnvManagerConfig.h"
#include "orchestrator/OrchestratorConfig.h"

namespace dspy::cli {
namespace {

std::string envValue(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

std::string configFile(const char* var, const char* fallback) {
  std::string f = envValue(var);
  if (!f.empty()) return f;
  std::error_code ec;
  return std::filesystem::exists(fallback, ec) ? fallback : "";
}

Addresses resolve() {
  Addresses a;
  const auto env = config::processEnv();
  a.em_config = configFile("ENV_MANAGER_CONFIG", "/etc/dspy-agent/env-manager.yaml");
  a.orch_config = configFile("ORCHESTRATOR_CONFIG", "/etc/dspy-agent/orchestrator.yaml");
  // A file that does not load leaves the defaults (with the environment applied); the
  // command that needs it reports the file's own error (`config validate`, `start`).
  auto em = envmanager::loadConfig(a.em_config, env);
  if (!em) em = envmanager::loadConfig("", env);
  const envmanager::EnvManagerConfig em_cfg = em ? em.value() : envmanager::EnvManagerConfig{};
  auto orch = orchestrator::loadConfig(a.orch_config, env);
  if (!orch) orch = orchestrator::loadConfig("", env);
  const orchestrator::OrchestratorConfig orch_cfg = orch ? orch.value() : orchestrator::OrchestratorConfig{};
  a.em_http = em_cfg.server.http_address;
  a.orch_http = orch_cfg.server.http_address;
  a.em_grpc = envValue("ENV_MANAGER_ADDR");
  if (a.em_grpc.empty()) a.em_grpc = em_cfg.server.grpc_address;
  a.orch_grpc = envValue("ORCHESTRATOR_ADDR");
  if (a.orch_grpc.empty()) a.orch_grpc = orch_cfg.server.grpc_address;
  return a;
}

}  // namespace

const Addresses& defaultAddresses() {
  static const Addresses a = resolve();
  return a;
}

}  // namespace dspy::cli
