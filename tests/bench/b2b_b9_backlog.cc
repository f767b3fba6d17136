// B2b: SubmitTasks in batches of 1,000 against a running orchestrator (durable store,
// normal sync), beside its same-run baseline: SQLite alone inserting the same rows (each
// task's row and its task_submitted outbox row, in the orchestrator's schema) in the
// same batches, one transaction per batch.
// B9: a backlog of 1,000,000 queued tasks with 200-byte payloads: orchestrator RSS with
// it, then kill -9 and a restart on the same store: time until a submission is accepted
// again, and how many tasks are still pending (all must be).
// Starts its own orchestrators from the build tree with temporary stores.
// Usage: b2b_b9_backlog BUILD_DIR [--seconds S] [--backlog N] [--only b2b|b9] [--out FILE]
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "orchestrator/events/Event.h"
#include "orchestrator/store/SqliteCommon.h"
#include "orchestrator/store/SqliteTaskStore.h"
#include "orchestrator/v1/orchestrator.grpc.pb.h"
#include "tests/bench/BenchStats.h"
#include "tests/support/Process.h"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace orch = dspy::orchestrator;

namespace {

constexpr int kBatch = 1000;

// A payload of 200 bytes (keys and values): what B9 asks for, and B2b uses too.
dspy::Payload payload(long n) {
  std::string step = std::to_string(n);
  step.resize(8, ' ');
  return {{"prompt", std::string(187, 'p')}, {"step", step}};
}

struct Daemon {
  std::string dir;
  int grpc_port = dspy::test::freePort();
  int http_port = dspy::test::freePort();
  std::unique_ptr<dspy::test::ChildProcess> proc;

  Daemon(const std::string& build, std::string store_dir = dspy::test::tempDir()) : dir(std::move(store_dir)) {
    const char* level = std::getenv("B9_LOG_LEVEL");
    dspy::test::writeFile(dir + "/c.yaml", dspy::bench::benchOrchestratorConfig(grpc_port, http_port, dir, "normal",
                                                                                level ? level : "warn", 300));
    start(build);
  }
  void start(const std::string& build) {
    proc = std::make_unique<dspy::test::ChildProcess>(
        std::vector<std::string>{build + "/orchestrator/orchestrator", "--config", dir + "/c.yaml"},
        std::map<std::string, std::string>{}, dir + "/log");
  }
  std::shared_ptr<grpc::Channel> channel() const {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
    // Reconnect at once: the restart is timed by a client polling a starting process,
    // which gRPC's default backoff (1 s, 1.6 s, ...) would round up.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 10);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 10);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 10);
    args.SetMaxReceiveMessageSize(64 << 20);
    return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(grpc_port), grpc::InsecureChannelCredentials(),
                                     args);
  }
};

bool serving(const Daemon& d) {
  auto stub = grpc::health::v1::Health::NewStub(d.channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 500ms);
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  return stub->Check(&ctx, req, &resp).ok();
}

orchestrator::v1::SubmitTasksRequest makeBatch(const std::string& prefix, const std::string& cls, long first) {
  orchestrator::v1::SubmitTasksRequest req;
  for (long n = first; n < first + kBatch; ++n) {
    auto* t = req.add_tasks();
    t->set_id(prefix + std::to_string(n));
    t->set_class_(cls);
    for (const auto& [k, v] : payload(n)) (*t->mutable_payload())[k] = v;
    if (cls == "hold") (*t->mutable_payload())["command"] = "wait";
  }
  return req;
}

// `clients` threads, each with its own channel, send batches of 1,000 (ids prefix-N)
// until `total` tasks were sent or `seconds` passed. Returns accepted tasks per second.
struct BatchRun {
  long accepted = 0;
  long refused = 0;
  double seconds = 0;
  std::vector<double> batch_ms;
};
BatchRun sendBatches(const Daemon& d, int clients, const std::string& prefix, const std::string& cls, long total,
                     double seconds) {
  std::atomic<long> next{0}, accepted{0}, refused{0};
  std::mutex mu;
  BatchRun run;
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      auto stub = orchestrator::v1::OrchestratorService::NewStub(d.channel());
      std::vector<double> mine;
      while (Clock::now() < end) {
        const long first = next.fetch_add(kBatch);
        if (first >= total) break;
        auto req = makeBatch(prefix, cls, first);
        orchestrator::v1::SubmitTasksResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 60s);
        const auto t0 = Clock::now();
        auto s = stub->SubmitTasks(&ctx, req, &resp);
        mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (!s.ok()) {
          std::fprintf(stderr, "SubmitTasks: %s\n", s.error_message().c_str());
          refused += kBatch;
          continue;
        }
        accepted += resp.accepted();
        refused += resp.results_size() - resp.accepted();
      }
      std::lock_guard lock(mu);
      run.batch_ms.insert(run.batch_ms.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  run.accepted = accepted;
  run.refused = refused;
  return run;
}

// SQLite alone: the rows the orchestrator writes for each accepted task (its tasks row
// and its task_submitted outbox row), with the same statements and pragmas, in
// transactions of 1,000; for `seconds` of transactions. Tasks per second.
double sqliteBaseline(double seconds, long* rows_out) {
  const std::string dir = dspy::test::tempDir();
  { auto created = orch::SqliteTaskStore::open(dir, orch::SyncMode::Normal); }  // the schema, then closed
  sqlite3* db = nullptr;
  sqlite3_open_v2((dir + "/orchestrator.db").c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL", nullptr, nullptr,
               nullptr);
  sqlite3_stmt* ins = nullptr;
  sqlite3_stmt* ev = nullptr;
  sqlite3_prepare_v2(db,
                     "INSERT INTO tasks (seq, id, class, priority, workflow_id, payload, request_hash, status, "
                     "attempts, result, error, submitted_ms, started_ms, finished_ms, not_before_ms, retry, queue) "
                     "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     -1, &ins, nullptr);
  sqlite3_prepare_v2(db,
                     "INSERT INTO outbox (seq, event_id, type, resource_id, resource_seq, ts_ns, source, data, "
                     "delivered_ms) VALUES (?,?,?,?,?,?,?,?,?)",
                     -1, &ev, nullptr);
  // Rows are made ahead (as the engine makes them, outside its store's transaction);
  // only the transactions that insert them are timed.
  struct Row {
    orch::TaskRecord t;
    std::string payload, data;
    orch::Event e;
  };
  long seq = 0;
  double took = 0;
  while (took < seconds) {
    std::vector<Row> rows(kBatch);
    for (auto& r : rows) {
      auto& t = r.t;
      ++seq;
      t.seq = seq;
      t.id = "sq" + std::to_string(seq);
      t.cls = t.queue = "hold";
      t.payload = payload(seq);
      t.payload["command"] = "wait";
      t.request_hash = orch::requestHash(t.cls, t.payload, 0, "");
      t.submitted_ms = seq;
      r.e = orch::taskEvent(t, true);
      r.payload = dspy::orchestrator::sqlite::dump(t.payload);
      r.data = dspy::orchestrator::sqlite::dump(r.e.data);
    }
    const auto t0 = Clock::now();
    sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    for (const auto& r : rows) {
      const auto& t = r.t;
      sqlite3_reset(ins);
      sqlite3_bind_int64(ins, 1, t.seq);
      sqlite3_bind_text(ins, 2, t.id.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_text(ins, 3, t.cls.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_int(ins, 4, 0);
      sqlite3_bind_text(ins, 5, "", -1, SQLITE_STATIC);
      sqlite3_bind_text(ins, 6, r.payload.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_text(ins, 7, t.request_hash.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_text(ins, 8, "pending", -1, SQLITE_STATIC);
      sqlite3_bind_int(ins, 9, 0);
      sqlite3_bind_text(ins, 10, "{}", -1, SQLITE_STATIC);
      sqlite3_bind_text(ins, 11, "", -1, SQLITE_STATIC);
      sqlite3_bind_int64(ins, 12, t.submitted_ms);
      sqlite3_bind_int64(ins, 13, 0);
      sqlite3_bind_int64(ins, 14, 0);
      sqlite3_bind_int64(ins, 15, 0);
      sqlite3_bind_text(ins, 16, "", -1, SQLITE_STATIC);
      sqlite3_bind_text(ins, 17, t.queue.c_str(), -1, SQLITE_STATIC);
      if (sqlite3_step(ins) != SQLITE_DONE) std::fprintf(stderr, "baseline insert: %s\n", sqlite3_errmsg(db));
      const auto& e = r.e;
      sqlite3_reset(ev);
      sqlite3_bind_int64(ev, 1, t.seq);
      sqlite3_bind_text(ev, 2, e.id.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_text(ev, 3, e.type.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_text(ev, 4, e.resource_id.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_int64(ev, 5, 1);
      sqlite3_bind_int64(ev, 6, t.seq);
      sqlite3_bind_text(ev, 7, e.source.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_text(ev, 8, r.data.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_int64(ev, 9, -1);
      if (sqlite3_step(ev) != SQLITE_DONE) std::fprintf(stderr, "baseline event: %s\n", sqlite3_errmsg(db));
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    took += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  sqlite3_finalize(ins);
  sqlite3_finalize(ev);
  sqlite3_close_v2(db);
  std::filesystem::remove_all(dir);
  *rows_out = seq;
  return static_cast<double>(seq) / took;
}

// GET /queue/status's "pending", read with curl.
long pendingOf(const Daemon& d) {
  std::string out;
  const std::string cmd = "/usr/bin/curl -s --max-time 10 http://127.0.0.1:" + std::to_string(d.http_port) +
                          "/queue/status";
  if (FILE* f = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    ::pclose(f);
  }
  try {
    return nlohmann::json::parse(out).at("pending").get<long>();
  } catch (const std::exception&) {
    std::fprintf(stderr, "queue/status: %s\n", out.c_str());
    return -1;
  }
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: b2b_b9_backlog BUILD_DIR [--seconds S] [--backlog N] [--only b2b|b9] [--out FILE]\n");
    return 2;
  }
  const std::string build = argv[1];
  double seconds = 5;
  long backlog = 1'000'000;
  std::string only;
  std::string out = build + "/bench/b2b_b9_backlog.json";
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--seconds") seconds = std::stod(argv[i + 1]);
    if (a == "--backlog") backlog = std::stol(argv[i + 1]);
    if (a == "--only") only = argv[i + 1];
    if (a == "--out") out = argv[i + 1];
  }
  std::filesystem::create_directories(std::filesystem::path(out).parent_path());
  nlohmann::json result = {{"benchmark", "B2b batch submit, B9 backlog"}, {"batch", kBatch}};
  int failures = 0;

  if (only.empty() || only == "b2b") {
    long rows = 0;
    const double base = sqliteBaseline(seconds, &rows);
    result["b2b_sqlite_rows_per_s"] = base;
    std::printf("B2b baseline: SQLite alone, the same rows in transactions of %d: %.0f tasks/s (%ld tasks)\n", kBatch,
                base, rows);
    Daemon d(build);
    if (!dspy::test::eventually([&] { return serving(d); }, 10s)) {
      std::fprintf(stderr, "orchestrator did not start:\n%s\n", d.proc->log().c_str());
      return 1;
    }
    int run = 0;
    for (const auto& [cls, clients] : std::vector<std::pair<std::string, int>>{{"hold", 1}, {"hold", 4}, {"bench", 4}}) {
      auto r = sendBatches(d, clients, "r" + std::to_string(++run) + "-", cls, 1L << 40, seconds);
      const double rate = static_cast<double>(r.accepted) / r.seconds;
      const std::string key = "b2b_" + cls + "_" + std::to_string(clients);
      result[key] = {{"tasks_per_s", rate}, {"accepted", r.accepted}, {"refused", r.refused},
                     {"batch_ms_p50", median(r.batch_ms)}, {"of_sqlite", rate / base}};
      std::printf("B2b SubmitTasks x%d, class %-5s (%s): %.0f tasks/s, batch p50 %.1f ms, %.0f%% of SQLite alone\n",
                  clients, cls.c_str(), cls == "hold" ? "queued" : "also run", rate, median(r.batch_ms),
                  100 * rate / base);
      if (r.refused > 0) ++failures;
    }
  }

  if (only.empty() || only == "b9") {
    Daemon d(build);
    if (!dspy::test::eventually([&] { return serving(d); }, 10s)) {
      std::fprintf(stderr, "orchestrator did not start:\n%s\n", d.proc->log().c_str());
      return 1;
    }
    std::this_thread::sleep_for(500ms);
    const double idle = dspy::bench::rssMb(d.proc->pid()).first;
    auto r = sendBatches(d, 4, "q", "hold", backlog, 3600);
    const auto [rss, hwm] = dspy::bench::rssMb(d.proc->pid());
    const long pending_before = pendingOf(d);
    std::printf("B9 backlog: %ld tasks queued in %.1f s (%.0f/s); RSS %.1f MB idle, %.1f MB with the backlog, "
                "%.1f MB peak; pending %ld\n",
                r.accepted, r.seconds, static_cast<double>(r.accepted) / r.seconds, idle, rss, hwm, pending_before);
    d.proc->signal(SIGKILL);
    d.proc->waitExit(10s);
    const auto t0 = Clock::now();
    d.start(build);
    // Accepting again: the first SubmitTask that succeeds, each try on a fresh channel (a
    // channel that failed to connect waits out its own reconnect backoff first).
    bool accepted = false;
    double serving_s = -1;
    while (!accepted && Clock::now() - t0 < 60s) {
      if (serving_s < 0 && serving(d)) serving_s = std::chrono::duration<double>(Clock::now() - t0).count();
      auto stub = orchestrator::v1::OrchestratorService::NewStub(d.channel());
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 200ms);
      orchestrator::v1::SubmitTaskRequest req;
      req.set_id("probe");
      req.set_class_("bench");
      orchestrator::v1::SubmitTaskResponse resp;
      accepted = stub->SubmitTask(&ctx, req, &resp).ok() && resp.success();
      if (!accepted) std::this_thread::sleep_for(5ms);  // polling a process that is starting
    }
    const double restart_s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (serving_s < 0) serving_s = restart_s;  // it answered the submission first
    long pending_after = -1;
    dspy::test::eventually([&] { return (pending_after = pendingOf(d)) >= 0; }, 10s);
    const double rss_restarted = dspy::bench::rssMb(d.proc->pid()).first;
    // The probe ran on the noop class; every backlog task is still pending or running.
    std::printf("B9 restart after kill -9: serving (health) in %.2f s, accepting again in %.2f s; pending %ld of %ld; "
                "RSS %.1f MB\n",
                serving_s, restart_s, pending_after, r.accepted, rss_restarted);
    result["b9"] = {{"tasks", r.accepted},           {"submit_seconds", r.seconds}, {"rss_idle_mb", idle},
                    {"rss_backlog_mb", rss},         {"rss_peak_mb", hwm},          {"pending_before", pending_before},
                    {"restart_accepting_s", restart_s}, {"restart_serving_s", serving_s}, {"pending_after", pending_after},
                    {"rss_after_restart_mb", rss_restarted}};
    if (!accepted || pending_after < r.accepted || r.refused > 0) ++failures;
    d.proc->signal(SIGKILL);
    d.proc->waitExit(10s);
    if (std::getenv("B9_KEEP_STORE") == nullptr) {
      std::filesystem::remove_all(d.dir + "/state");
    } else {
      std::printf("store kept in %s/state (config %s/c.yaml)\n", d.dir.c_str(), d.dir.c_str());
    }
  }
  result["failures"] = failures;
  dspy::bench::writeJson(out, result);
  return failures == 0 ? 0 : 1;
}
