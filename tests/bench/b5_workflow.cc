// B5 workflow engine overhead, in process, on the real TaskEngine and WorkflowEngine
// with no-op tasks. Each shape runs as a workflow and, as the same-run baseline, as the
// same tasks submitted straight to the task engine (a chain submits the next task when
// the previous one finished, as the engine does):
//   chain:   1,000 nodes, each depending on the one before
//   fan-out: 1,000 independent nodes
//   diamonds: 1,000 concurrent runs of a 5-step diamond (a -> b, c, d -> e)
// Overhead per step = (workflow time - baseline time) / steps. Also the process RSS
// with the 1,000 diamond runs live.
// Usage: b5_workflow OUT_DIR [--store memory|sqlite]
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <unistd.h>

#include "orchestrator/scheduler/TaskEngine.h"
#include "orchestrator/store/MemoryTaskStore.h"
#include "orchestrator/store/SqliteTaskStore.h"
#include "orchestrator/workflows/WorkflowEngine.h"
#include "tests/bench/BenchStats.h"
#include "tests/support/Process.h"

using namespace dspy::orchestrator;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

struct Rig {
  std::unique_ptr<MemoryTaskStore> memory;
  std::unique_ptr<SqliteTaskStore> sqlite;
  TaskStore* tasks_store = nullptr;
  WorkflowStore* flow_store = nullptr;
  std::unique_ptr<TaskEngine> tasks;
  std::unique_ptr<WorkflowEngine> flows;
  std::mutex extra_mu;
  std::function<void(const TaskRecord&)> extra;  // the baseline's own listener
  void setExtra(std::function<void(const TaskRecord&)> f) {
    std::lock_guard lock(extra_mu);
    extra = std::move(f);
  }

  explicit Rig(const std::string& store) {
    if (store == "sqlite") {
      auto s = SqliteTaskStore::open(dspy::test::tempDir(), SyncMode::Normal);
      if (!s) throw std::runtime_error(s.error());
      sqlite = std::move(s).value();
      tasks_store = sqlite.get();
      flow_store = sqlite.get();
    } else {
      memory = std::make_unique<MemoryTaskStore>();
      tasks_store = memory.get();
      flow_store = memory.get();
    }
    EngineConfig cfg;
    ClassConfig c;
    c.executor = "noop";
    c.limiter = LimiterConfig{.kind = "fixed", .initial = 8, .min = 1, .max = 8};
    c.max_queued = 10'000'000;
    c.retry.max_attempts = 1;
    cfg.classes["cpu_short"] = c;
    cfg.retain_finished = 2000;
    tasks = std::make_unique<TaskEngine>(cfg, *tasks_store, TaskEngine::Executors{{"cpu_short", std::make_shared<NoopExecutor>()}},
                                         dspy::Clock::real());
    WorkflowConfig wc;
    wc.limits.max_nodes = 10'000;
    wc.limits.max_bytes = 64 << 20;
    flows = std::make_unique<WorkflowEngine>(wc, *flow_store, *tasks, dspy::Clock::real(), nullptr);
    tasks->setListener([this](const TaskRecord& t) {
      flows->onTask(t);
      std::function<void(const TaskRecord&)> f;
      {
        std::lock_guard lock(extra_mu);
        f = extra;
      }
      if (f) f(t);
    });
    (void)tasks->recover();
    tasks->start();
  }
  ~Rig() {
    flows->stop();
    tasks->stop();
  }
};

std::string taskNode(const std::string& id) {
  return R"({"id":")" + id + R"(","type":"task","task":{"class":"cpu_short","payload":{"k":"v"}}})";
}

std::string specOf(const std::string& name, int nodes, const std::vector<std::pair<int, int>>& edges) {
  std::string s = R"({"name":")" + name + R"(","nodes":[)";
  for (int i = 0; i < nodes; ++i) s += (i ? "," : "") + taskNode("n" + std::to_string(i));
  s += R"(],"edges":[)";
  for (std::size_t i = 0; i < edges.size(); ++i) {
    s += (i ? "," : "") + std::string(R"({"source":"n)") + std::to_string(edges[i].first) + R"(","target":"n)" +
         std::to_string(edges[i].second) + R"("})";
  }
  return s + "]}";
}

// Starts `runs` runs and waits until all ended; seconds.
double runWorkflow(Rig& rig, const std::string& spec, int runs, double* rss_live) {
  auto w = rig.flows->putWorkflow(spec, "", WorkflowEngine::PutMode::Create);
  if (!w) throw std::runtime_error(w.error());
  const auto t0 = SteadyClock::now();
  std::vector<std::string> ids(static_cast<std::size_t>(runs));
  std::atomic<int> started{0};
  for (int i = 0; i < runs; ++i) {
    rig.flows->startRun(w.value().id, "", {}, [&, i](dspy::Result<RunRecord> r) {
      if (!r) throw std::runtime_error(r.error());
      ids[static_cast<std::size_t>(i)] = r.value().id;
      ++started;
    });
  }
  while (started < runs) std::this_thread::sleep_for(1ms);
  if (rss_live != nullptr) *rss_live = dspy::bench::rssMb(::getpid()).first;
  while (rig.flows->liveRuns() > 0) std::this_thread::sleep_for(1ms);
  const double secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  for (const auto& id : ids) {
    auto r = rig.flows->getRun(id);
    if (!r || r.value().status != RunStatus::Succeeded) {
      throw std::runtime_error("run " + id + " did not succeed: " + (r ? r.value().error : r.error()));
    }
  }
  return secs;
}

// The baseline chain: the next task is submitted when the previous one finished.
double baselineChain(Rig& rig, int n) {
  std::promise<void> done;
  std::atomic<int> next{1};
  rig.setExtra([&](const TaskRecord& t) {
    if (t.status != TaskStatus::Completed || t.id.rfind("chain-", 0) != 0) return;
    const int i = next++;
    if (i == n) return done.set_value();
    rig.tasks->submit(SubmitRequest{.id = "chain-" + std::to_string(i), .cls = "cpu_short", .payload = {{"k", "v"}}},
                      [](dspy::Result<std::string>) {});
  });
  const auto t0 = SteadyClock::now();
  rig.tasks->submit(SubmitRequest{.id = "chain-0", .cls = "cpu_short", .payload = {{"k", "v"}}},
                    [](dspy::Result<std::string>) {});
  done.get_future().wait();
  rig.setExtra(nullptr);
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

// The baseline for independent tasks: all submitted at once.
double baselineAll(Rig& rig, const std::string& prefix, int n) {
  std::promise<void> done;
  std::atomic<int> finished{0};
  rig.setExtra([&](const TaskRecord& t) {
    if (t.status == TaskStatus::Completed && t.id.rfind(prefix, 0) == 0 && ++finished == n) done.set_value();
  });
  const auto t0 = SteadyClock::now();
  for (int i = 0; i < n; ++i) {
    rig.tasks->submit(SubmitRequest{.id = prefix + std::to_string(i), .cls = "cpu_short", .payload = {{"k", "v"}}},
                      [](dspy::Result<std::string>) {});
  }
  done.get_future().wait();
  rig.setExtra(nullptr);
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: b5_workflow OUT_DIR [--store memory|sqlite]\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  const std::string out_dir = argv[1];
  std::string store = "sqlite";
  for (int i = 2; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--store") store = argv[i + 1];
  }
  nlohmann::json result{{"benchmark", "B5 workflow"}, {"store", store}};
  Rig rig(store);
  const int n = 1000;

  std::vector<std::pair<int, int>> chain;
  for (int i = 1; i < n; ++i) chain.emplace_back(i - 1, i);
  const double chain_base = baselineChain(rig, n);
  const double chain_wf = runWorkflow(rig, specOf("chain", n, chain), 1, nullptr);
  std::printf("%-8s chain 1000:     baseline %7.3f s, workflow %7.3f s, overhead %6.3f ms/step, %6.0f steps/s\n",
              store.c_str(), chain_base, chain_wf, (chain_wf - chain_base) * 1000 / n, n / chain_wf);
  result["chain"] = {{"baseline_s", chain_base}, {"workflow_s", chain_wf},
                     {"overhead_ms_per_step", (chain_wf - chain_base) * 1000 / n}, {"steps_per_s", n / chain_wf}};

  const double fan_base = baselineAll(rig, "fan-", n);
  const double fan_wf = runWorkflow(rig, specOf("fan", n, {}), 1, nullptr);
  std::printf("%-8s fan-out 1000:   baseline %7.3f s, workflow %7.3f s, overhead %6.3f ms/step, %6.0f steps/s\n",
              store.c_str(), fan_base, fan_wf, (fan_wf - fan_base) * 1000 / n, n / fan_wf);
  result["fanout"] = {{"baseline_s", fan_base}, {"workflow_s", fan_wf},
                      {"overhead_ms_per_step", (fan_wf - fan_base) * 1000 / n}, {"steps_per_s", n / fan_wf}};

  const double dia_base = baselineAll(rig, "dia-", 5 * n);
  double rss_live = 0;
  const double dia_wf =
      runWorkflow(rig, specOf("diamond", 5, {{0, 1}, {0, 2}, {0, 3}, {1, 4}, {2, 4}, {3, 4}}), n, &rss_live);
  std::printf("%-8s 1000 diamonds:  baseline %7.3f s, workflow %7.3f s, overhead %6.3f ms/step, %6.0f steps/s, "
              "RSS with the runs live %.1f MB\n",
              store.c_str(), dia_base, dia_wf, (dia_wf - dia_base) * 1000 / (5 * n), 5 * n / dia_wf, rss_live);
  result["diamonds"] = {{"baseline_s", dia_base},
                        {"workflow_s", dia_wf},
                        {"overhead_ms_per_step", (dia_wf - dia_base) * 1000 / (5 * n)},
                        {"steps_per_s", 5 * n / dia_wf},
                        {"rss_live_mb", rss_live}};
  std::filesystem::create_directories(out_dir);
  std::ofstream(out_dir + "/b5_workflow_" + store + ".json") << result.dump(2) << "\n";
  std::printf("wrote %s/b5_workflow_%s.json\n", out_dir.c_str(), store.c_str());
  return 0;
}
