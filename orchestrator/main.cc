// orchestrator: accepts tasks and workflows from Python code (gRPC 50052, HTTP 9097).
#include <spdlog/spdlog.h>

#include "common/DaemonRuntime.h"
#include "orchestrator/OrchestratorConfig.h"
#include "orchestrator/api/HttpApi.h"
#include "orchestrator/api/OrchestratorService.h"
#include "orchestrator/executors/ContainerExecutor.h"
#include "orchestrator/executors/HttpExecutor.h"
#include "orchestrator/scheduler/EngineMetrics.h"

namespace {

using namespace dspy::orchestrator;

// Everything the daemon runs, in construction order (destroyed in reverse).
struct Orchestrator {
  std::unique_ptr<SqliteTaskStore> store;
  std::shared_ptr<ProcessExecutor> process;
  std::shared_ptr<HttpExecutor> http;
  std::unique_ptr<EnvManagerClient> env_manager;
  std::unique_ptr<EngineMetrics> metrics;  // outlives the engine that reports to it
  std::unique_ptr<TaskEngine> engine;
  std::unique_ptr<WorkflowEngine> workflows;
  std::unique_ptr<OrchestratorService> service;
  ~Orchestrator() {
    if (workflows) workflows->stop();
    if (engine) engine->stop();
    if (env_manager) env_manager->stop();
  }
};

TaskEngine::Executors buildExecutors(const OrchestratorConfig& cfg, Orchestrator& o) {
  TaskEngine::Executors out;
  auto& process = o.process = std::make_shared<ProcessExecutor>(cfg.process);
  auto& http = o.http = std::make_shared<HttpExecutor>(cfg.runner_url);
  auto& env_manager = *o.env_manager;
  auto slurm = std::make_shared<SlurmExecutor>();
  auto noop = std::make_shared<NoopExecutor>();
  for (const auto& [name, c] : cfg.engine.classes) {
    if (c.executor == "process") out[name] = process;
    if (c.executor == "http") out[name] = http;
    if (c.executor == "slurm") out[name] = slurm;
    if (c.executor == "noop") out[name] = noop;
    if (c.executor == "container") out[name] = std::make_shared<ContainerExecutor>(env_manager, c.workload_class);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  dspy::DaemonSpec<OrchestratorConfig> spec{
      .info = {"orchestrator", "ORCHESTRATOR_CONFIG", "/etc/dspy-agent/orchestrator.yaml",
               "task and workflow orchestrator for dspy-agent"},
      .load = loadConfig,
      .setup = [](dspy::DaemonRuntime& runtime, const OrchestratorConfig& cfg) -> dspy::Result<std::shared_ptr<void>> {
        auto o = std::make_shared<Orchestrator>();
        auto store = SqliteTaskStore::open(cfg.store.dir, cfg.store.mode(), cfg.store.max_batch);
        if (!store) {
          return dspy::Error{store.error() + "; set store.dir in the config file or ENV_QUEUE_DIR to a directory "
                                             "the orchestrator may write"};
        }
        o->store = std::move(store.value());
        o->env_manager = std::make_unique<EnvManagerClient>(cfg.env_manager);
        o->metrics = std::make_unique<EngineMetrics>(runtime.metrics());
        o->engine = std::make_unique<TaskEngine>(cfg.engine, *o->store, buildExecutors(cfg, *o),
                                                 dspy::Clock::real(), o->metrics.get());
        o->metrics->attach(*o->engine);
        EnvManagerClient* link = o->env_manager.get();
        o->workflows = std::make_unique<WorkflowEngine>(
            cfg.workflows, *o->store, *o->engine, dspy::Clock::real(), nullptr,
            [link](const std::vector<std::string>& names, std::stop_token stop) { return link->startServices(names, stop); });
        WorkflowEngine* flows = o->workflows.get();
        o->engine->setListener([flows](const TaskRecord& t) { flows->onTask(t); });
        if (dspy::Status s = o->engine->recover(); !s.ok()) {
          return dspy::Error{"cannot recover tasks from " + o->store->path() + ": " + s.error()};
        }
        bool container = false;
        bool runner = false;
        for (const auto& [name, c] : cfg.engine.classes) {
          container = container || c.executor == "container";
          runner = runner || c.executor == "http";
        }
        const ServiceParts parts{.engine = *o->engine,
                                 .workflows = o->workflows.get(),
                                 .env_manager = o->env_manager.get(),
                                 .runner = runner ? o->http.get() : nullptr,
                                 .result_heartbeat = std::chrono::milliseconds(cfg.result_heartbeat_ms)};
        o->service = std::make_unique<OrchestratorService>(parts, runtime.metrics());
        runtime.grpc().addService(o->service.get());
        registerHttpApi(runtime.http(), *o->engine);
        registerWorkflowHttp(runtime.http(), *o->workflows);
        runtime.setHealthReporter([parts] { return healthReport(parts); });
        o->env_manager->start(container);
        o->engine->start();
        if (dspy::Status s = o->workflows->recover(); !s.ok()) {
          return dspy::Error{"cannot resume workflow runs from " + o->store->path() + ": " + s.error()};
        }
        spdlog::info("task store {} ({} sync); {} task classes", o->store->path(), cfg.store.sync,
                     cfg.engine.classes.size());
        return std::shared_ptr<void>(o);
      },
      .reload =
          [](const OrchestratorConfig& cfg, const std::shared_ptr<void>& owned) {
            auto* o = static_cast<Orchestrator*>(owned.get());
            o->process->setConfig(cfg.process);
            o->http->setUrl(cfg.runner_url);
            for (const auto& note : o->engine->reconfigure(cfg.engine)) spdlog::info("reload: {}", note);
            spdlog::info("reload: task classes, executors' allowlist and runner URL applied; store.* and "
                         "env_manager.* take effect after a restart");
          },
  };
  return dspy::runDaemon(argc, argv, spec);
}
