// orchestrator: accepts tasks and workflows from Python code (gRPC 50052, HTTP 9097).
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <future>
#include <mutex>

#include "common/DaemonRuntime.h"
#include "orchestrator/OrchestratorConfig.h"
#include "orchestrator/api/HttpApi.h"
#include "orchestrator/api/OrchestratorService.h"
#include "orchestrator/events/EventMetrics.h"
#include "orchestrator/executors/ContainerExecutor.h"
#include "orchestrator/executors/HttpExecutor.h"
#include "orchestrator/scheduler/EngineMetrics.h"
#include "orchestrator/slurm/SlurmMetrics.h"

namespace {

using namespace dspy::orchestrator;

// Everything the daemon runs, in construction order (destroyed in reverse).
struct Orchestrator {
  std::unique_ptr<EventHub> hub;  // before the store: its writer thread publishes here
  std::unique_ptr<SqliteTaskStore> store;
  std::unique_ptr<KafkaRelay> relay;
  std::jthread pruner;
  std::shared_ptr<ProcessExecutor> process;
  std::shared_ptr<HttpExecutor> http;
  std::shared_ptr<SlurmExecutor> slurm;
  std::unique_ptr<EnvManagerClient> env_manager;
  std::unique_ptr<EngineMetrics> metrics;  // outlives the engine that reports to it
  std::unique_ptr<TaskEngine> engine;
  std::unique_ptr<WorkflowEngine> workflows;
  std::unique_ptr<OrchestratorService> service;
  ~Orchestrator() {
    if (workflows) workflows->stop();
    if (engine) engine->stop();
    if (slurm) slurm->stop();  // after the engine: its jobs are detached, not cancelled
    if (env_manager) env_manager->stop();
    if (pruner.joinable()) {
      pruner.request_stop();
      pruner.join();
    }
    // The last state changes' events are in the outbox before the relay's bounded flush.
    if (store) store->flush();
    if (relay) relay->stop();
  }
};

TaskEngine::Executors buildExecutors(const OrchestratorConfig& cfg, Orchestrator& o) {
  TaskEngine::Executors out;
  auto& process = o.process = std::make_shared<ProcessExecutor>(cfg.process);
  auto& http = o.http = std::make_shared<HttpExecutor>(cfg.runner_url);
  auto& env_manager = *o.env_manager;
  auto& slurm = o.slurm = std::make_shared<SlurmExecutor>(
      cfg.slurm, *o.store, std::make_shared<slurm::CliSlurmCommands>(cfg.slurm.commands));
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

// Deletes delivered events older than the retention, a bounded number per write, once a
// minute.
void pruneLoop(EventLog& log, std::chrono::hours retention, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  constexpr int kPerWrite = 50'000;
  while (!stop.stop_requested()) {
    std::int64_t gone = kPerWrite;
    while (gone == kPerWrite && !stop.stop_requested()) {
      const auto cutoff = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              (std::chrono::system_clock::now() - retention).time_since_epoch())
                              .count();
      std::promise<dspy::Result<std::int64_t>> done;
      log.pruneEvents(cutoff, kPerWrite, [&done](dspy::Result<std::int64_t> r) { done.set_value(std::move(r)); });
      auto r = done.get_future().get();
      gone = r.ok() ? r.value() : 0;
      if (!r.ok()) spdlog::warn("outbox prune: {}", r.error());
      if (gone > 0) spdlog::info("outbox: pruned {} delivered event(s) older than {} h", gone, retention.count());
    }
    std::unique_lock lock(mu);
    cv.wait_for(lock, stop, std::chrono::minutes(1), [] { return false; });
  }
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
        o->hub = std::make_unique<EventHub>(static_cast<std::size_t>(cfg.events.stream_buffer));
        o->store->setRelayed(!cfg.kafka.brokers.empty());
        o->store->setCommitted([hub = o->hub.get()](const std::vector<Event>& events) { hub->publish(events); });
        if (!cfg.kafka.brokers.empty()) {
          auto relay = KafkaRelay::create(cfg.kafka, *o->store, *o->hub);
          if (!relay) return dspy::Error{relay.error() + " (kafka.* in the config file, KAFKA_BROKERS)"};
          o->relay = std::move(relay.value());
        }
        o->env_manager = std::make_unique<EnvManagerClient>(cfg.env_manager);
        // Service health changes env-manager reports become events (while the link is used).
        o->env_manager->setServiceListener(
            [store = o->store.get()](const std::string& service, bool healthy, const std::string& message) {
              store->appendEvents({makeEvent("service_status",
                                             {{"service_name", service},
                                              {"status", healthy ? "healthy" : "unhealthy"},
                                              {"message", message}},
                                             "env-manager")},
                                  nullptr);
            });
        o->metrics = std::make_unique<EngineMetrics>(runtime.metrics());
        o->engine = std::make_unique<TaskEngine>(cfg.engine, *o->store, buildExecutors(cfg, *o),
                                                 dspy::Clock::real(), o->metrics.get());
        o->metrics->attach(*o->engine);
        EnvManagerClient* link = o->env_manager.get();
        o->workflows = std::make_unique<WorkflowEngine>(
            cfg.workflows, *o->store, *o->engine, dspy::Clock::real(),
            [link](const std::vector<std::string>& names, std::stop_token stop) { return link->startServices(names, stop); });
        WorkflowEngine* flows = o->workflows.get();
        o->engine->setListener([flows](const TaskRecord& t) { flows->onTask(t); });
        if (dspy::Status s = o->engine->recover(); !s.ok()) {
          return dspy::Error{"cannot recover tasks from " + o->store->path() + ": " + s.error()};
        }
        bool container = false;
        bool runner = false;
        bool slurm_used = false;
        for (const auto& [name, c] : cfg.engine.classes) {
          container = container || c.executor == "container";
          runner = runner || c.executor == "http";
          slurm_used = slurm_used || c.executor == "slurm";
        }
        const ServiceParts parts{.engine = *o->engine,
                                 .workflows = o->workflows.get(),
                                 .env_manager = o->env_manager.get(),
                                 .runner = runner ? o->http.get() : nullptr,
                                 .result_heartbeat = std::chrono::milliseconds(cfg.result_heartbeat_ms),
                                 .events = o->store.get(),
                                 .hub = o->hub.get(),
                                 .relay = o->relay.get(),
                                 .kafka_degraded_depth = cfg.kafka.degraded_depth,
                                 .slurm = slurm_used ? o->slurm.get() : nullptr,
                                 .slurm_jobs = o->store.get()};
        o->service = std::make_unique<OrchestratorService>(parts, runtime.metrics());
        attachEventMetrics(runtime.metrics(), *o->store, o->relay.get());
        runtime.grpc().addService(o->service.get());
        registerHttpApi(runtime.http(), *o->engine, slurm_used ? o->slurm.get() : nullptr, *o->store);
        if (slurm_used) attachSlurmMetrics(runtime.metrics(), *o->slurm);
        registerWorkflowHttp(runtime.http(), *o->workflows);
        registerUiHttp(runtime.http(), *o->store, *o->hub, *o->env_manager);
        runtime.setHealthReporter([parts] { return healthReport(parts); });
        o->env_manager->start(container);
        o->slurm->start();
        o->engine->start();
        if (dspy::Status s = o->workflows->recover(); !s.ok()) {
          return dspy::Error{"cannot resume workflow runs from " + o->store->path() + ": " + s.error()};
        }
        if (o->relay) o->relay->start();
        o->pruner = std::jthread([store = o->store.get(), hours = cfg.events.retention_hours](std::stop_token stop) {
          pruneLoop(*store, std::chrono::hours(hours), stop);
        });
        spdlog::info("task store {} ({} sync); {} task classes; events {}", o->store->path(), cfg.store.sync,
                     cfg.engine.classes.size(),
                     cfg.kafka.brokers.empty() ? std::string("kept for StreamEvents (Kafka not configured)")
                                               : "to Kafka " + cfg.kafka.brokers + " topic " + cfg.kafka.topic);
        return std::shared_ptr<void>(o);
      },
      .reload =
          [](const OrchestratorConfig& cfg, const std::shared_ptr<void>& owned) {
            auto* o = static_cast<Orchestrator*>(owned.get());
            o->process->setConfig(cfg.process);
            o->http->setUrl(cfg.runner_url);
            for (const auto& note : o->engine->reconfigure(cfg.engine)) spdlog::info("reload: {}", note);
            spdlog::info("reload: task classes, executors' allowlist and runner URL applied; store.*, "
                         "env_manager.*, kafka.* and slurm.* take effect after a restart");
          },
  };
  return dspy::runDaemon(argc, argv, spec);
}
