// orchestrator: accepts tasks and workflows from Python code (gRPC 50052, HTTP 9097).
#include "common/DaemonRuntime.h"
#include "orchestrator/OrchestratorConfig.h"
#include "orchestrator/v1/orchestrator.grpc.pb.h"

namespace {

// Health is answered for real from what this build runs; the other RPCs of the
// contract answer UNIMPLEMENTED (the generated defaults) until they are built.
class OrchestratorService final : public orchestrator::v1::OrchestratorService::CallbackService {
 public:
  grpc::ServerUnaryReactor* Health(grpc::CallbackServerContext* ctx, const orchestrator::v1::HealthRequest*,
                                   orchestrator::v1::HealthResponse* resp) override {
    resp->set_healthy(true);
    resp->set_version(dspy::version());
    (*resp->mutable_services())["grpc"] = "serving";
    (*resp->mutable_services())["http"] = "serving";
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

}  // namespace

int main(int argc, char** argv) {
  using dspy::orchestrator::OrchestratorConfig;
  dspy::DaemonSpec<OrchestratorConfig> spec{
      .info = {"orchestrator", "ORCHESTRATOR_CONFIG", "/etc/dspy-agent/orchestrator.yaml",
               "task and workflow orchestrator for dspy-agent"},
      .load = dspy::orchestrator::loadConfig,
      .setup = [](dspy::DaemonRuntime& runtime, const OrchestratorConfig&) -> dspy::Result<std::shared_ptr<void>> {
        auto service = std::make_shared<OrchestratorService>();
        runtime.grpc().addService(service.get());
        return std::shared_ptr<void>(service);
      },
  };
  return dspy::runDaemon(argc, argv, spec);
}
