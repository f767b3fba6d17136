// B2: SubmitTask latency and throughput against a running orchestrator (durable store
// on), with 1 and 16 concurrent clients, beside the floor: grpc.health.v1 Check, a
// plain unary RPC on the same server. Also B8: the orchestrator's RSS idle and after
// the load. Starts its own orchestrator from the build tree with a temporary store.
// Usage: b2_submit BUILD_DIR [--seconds S] [--out FILE]
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "orchestrator/v1/orchestrator.grpc.pb.h"
#include "tests/bench/BenchStats.h"
#include "tests/support/Process.h"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Daemon {
  std::string dir = dspy::test::tempDir();
  int grpc_port = dspy::test::freePort();
  int http_port = dspy::test::freePort();
  std::unique_ptr<dspy::test::ChildProcess> proc;

  Daemon(const std::string& build, const std::string& sync) {
    dspy::test::writeFile(dir + "/c.yaml", "grpc:\n  address: 127.0.0.1:" + std::to_string(grpc_port) +
                                               "\nhttp:\n  address: 127.0.0.1:" + std::to_string(http_port) +
                                               "\nstore:\n  dir: " + dir + "/state\n  sync: " + sync +
                                               "\nlog:\n  level: warn\n"
                                               "tasks:\n  classes:\n    bench:\n      executor: noop\n"
                                               "      limiter: {kind: fixed, initial: 4, max: 4}\n"
                                               "      max_queued: 10000000\n"
                                               // Accepts and queues only: one task holds the class's
                                               // single slot, so this isolates the submission path.
                                               "    hold:\n      executor: process\n"
                                               "      limiter: {kind: fixed, initial: 1, max: 1}\n"
                                               "      max_queued: 10000000\n"
                                               "executors:\n  process:\n    commands:\n"
                                               "      wait: {argv: [/bin/sleep, '3600']}\n");
    proc = std::make_unique<dspy::test::ChildProcess>(
        std::vector<std::string>{build + "/orchestrator/orchestrator", "--config", dir + "/c.yaml"},
        std::map<std::string, std::string>{}, dir + "/log");
  }
  std::shared_ptr<grpc::Channel> channel() const {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
    return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(grpc_port), grpc::InsecureChannelCredentials(),
                                     args);
  }
};

// Runs `clients` threads, each with its own channel, calling `call` for `seconds`.
template <class Call>
dspy::bench::Summary load(const Daemon& d, int clients, double seconds, Call call) {
  std::vector<std::vector<double>> lat(static_cast<std::size_t>(clients));
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  std::atomic<int> failures{0};
  const auto t_end = [&] {
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  };
  // Written before `go` is set, read by the clients after they saw it.
  Clock::time_point end;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto ch = d.channel();
      ch->WaitForConnected(std::chrono::system_clock::now() + 5s);
      while (!go.load()) std::this_thread::yield();
      long n = 0;
      while (Clock::now() < end) {
        const auto t0 = Clock::now();
        if (!call(ch, c, n++)) failures++;
        lat[static_cast<std::size_t>(c)].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
    });
  }
  std::this_thread::sleep_for(300ms);  // let every client connect before the clock starts
  end = t_end();
  const auto start = Clock::now();
  go = true;
  for (auto& t : threads) t.join();
  const double took = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  if (failures > 0) std::fprintf(stderr, "warning: %d calls failed\n", failures.load());
  return dspy::bench::summarize(all, took);
}

// One stub per thread and channel (a thread may outlive a daemon and its channel).
template <class Service>
typename Service::Stub& stubFor(const std::shared_ptr<grpc::Channel>& ch) {
  thread_local std::pair<grpc::Channel*, std::unique_ptr<typename Service::Stub>> cached;
  if (cached.first != ch.get()) cached = {ch.get(), Service::NewStub(ch)};
  return *cached.second;
}

bool echo(const std::shared_ptr<grpc::Channel>& ch, int, long) {
  auto* stub = &stubFor<grpc::health::v1::Health>(ch);
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  return stub->Check(&ctx, req, &resp).ok();
}

std::atomic<long> g_run{0};

std::string g_class = "bench";

bool submit(const std::shared_ptr<grpc::Channel>& ch, int client, long n) {
  auto* stub = &stubFor<orchestrator::v1::OrchestratorService>(ch);
  grpc::ClientContext ctx;
  orchestrator::v1::SubmitTaskRequest req;
  req.set_id("b" + std::to_string(g_run.load()) + "-" + std::to_string(client) + "-" + std::to_string(n));
  req.set_class_(g_class);
  if (g_class == "hold") (*req.mutable_payload())["command"] = "wait";
  (*req.mutable_payload())["prompt"] = "a short payload of a typical size for an agent task";
  (*req.mutable_payload())["step"] = std::to_string(n);
  orchestrator::v1::SubmitTaskResponse resp;
  return stub->SubmitTask(&ctx, req, &resp).ok() && resp.success();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: b2_submit BUILD_DIR [--seconds S] [--out FILE]\n");
    return 2;
  }
  const std::string build = argv[1];
  double seconds = 3;
  std::string out = build + "/bench/b2_submit.json";
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--seconds") seconds = std::stod(argv[i + 1]);
    if (std::string(argv[i]) == "--out") out = argv[i + 1];
  }
  std::filesystem::create_directories(std::filesystem::path(out).parent_path());
  nlohmann::json result = {{"benchmark", "B2 submit"}, {"seconds_per_phase", seconds}};
  std::printf("%-8s %-7s %-22s %10s %10s %12s\n", "store", "clients", "rpc", "p50 us", "p99 us", "calls/s");
  for (const std::string sync : {"normal", "full"}) {
    Daemon d(build, sync);
    if (!dspy::test::eventually([&] { return echo(d.channel(), 0, 0); }, 10s)) {
      std::fprintf(stderr, "orchestrator did not start:\n%s\n", d.proc->log().c_str());
      return 1;
    }
    if (sync == "normal") {
      std::this_thread::sleep_for(500ms);
      result["b8_rss_idle_mb"] = dspy::bench::rssMb(d.proc->pid()).first;
    }
    for (int clients : {1, 16}) {
      g_run++;
      auto e = load(d, clients, seconds, echo);
      auto s = load(d, clients, seconds, submit);
      const std::string key = sync + "_" + std::to_string(clients);
      result[key] = {{"echo", dspy::bench::toJson(e)}, {"submit", dspy::bench::toJson(s)},
                     {"p50_ratio", s.p50_us / e.p50_us}};
      std::printf("%-8s %-7d %-22s %10.0f %10.0f %12.0f\n", sync.c_str(), clients, "health Check (floor)", e.p50_us,
                  e.p99_us, e.per_second);
      std::printf("%-8s %-7d %-22s %10.0f %10.0f %12.0f   p50 ratio %.2f\n", sync.c_str(), clients, "SubmitTask",
                  s.p50_us, s.p99_us, s.per_second, s.p50_us / e.p50_us);
    }
    if (sync == "normal") {
      g_run++;
      g_class = "hold";
      auto h = load(d, 16, seconds, submit);
      g_class = "bench";
      result["normal_16_submit_only"] = dspy::bench::toJson(h);
      std::printf("%-8s %-7d %-22s %10.0f %10.0f %12.0f   (tasks queued, not run)\n", sync.c_str(), 16,
                  "SubmitTask, queue only", h.p50_us, h.p99_us, h.per_second);
    }
    const auto [rss, hwm] = dspy::bench::rssMb(d.proc->pid());
    result[sync + "_rss_after_mb"] = rss;
    result[sync + "_rss_peak_mb"] = hwm;
    std::printf("orchestrator RSS (%s store): %.1f MB now, %.1f MB peak\n", sync.c_str(), rss, hwm);
  }
  dspy::bench::writeJson(out, result);
  return 0;
}
