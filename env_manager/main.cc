// env-manager: owns the Docker lifecycle of the backing services (gRPC 50100, HTTP 50101).
#include "common/DaemonRuntime.h"
#include "env_manager/EnvManagerConfig.h"
#include "env_manager/v1/env_manager.grpc.pb.h"

int main(int argc, char** argv) {
  using dspy::envmanager::EnvManagerConfig;
  dspy::DaemonSpec<EnvManagerConfig> spec{
      .info = {"env-manager", "ENV_MANAGER_CONFIG", "/etc/dspy-agent/env-manager.yaml",
               "Docker lifecycle manager for the dspy-agent backing services"},
      .load = dspy::envmanager::loadConfig,
      .setup = [](dspy::DaemonRuntime& runtime, const EnvManagerConfig&) -> dspy::Result<std::shared_ptr<void>> {
        // The contract's RPCs that are not built yet answer UNIMPLEMENTED (the
        // generated defaults), never a fake success.
        auto service = std::make_shared<env_manager::v1::EnvManagerService::CallbackService>();
        runtime.grpc().addService(service.get());
        return std::shared_ptr<void>(service);
      },
  };
  return dspy::runDaemon(argc, argv, spec);
}
