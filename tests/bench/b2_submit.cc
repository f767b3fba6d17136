// B2: SubmitTask latency and throughput against a running orchestrator (durable store
// on), with 1 and 16 concurrent clients, beside the floor: grpc.health.v1 Check, a
// plain unary RPC on the same server. B2-HTTP: POST /queue/submit from 1 and 64
// kept-alive HTTP clients beside gRPC SubmitTask from as many clients, in the same run,
// with each client's request count (none may starve). Also B8: the orchestrator's RSS
// idle and after the load. Starts its own orchestrator from the build tree with a
// temporary store.
// Usage: b2_submit BUILD_DIR [--seconds S] [--out FILE]
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

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
    // Class "hold" accepts and queues only (its one slot is held), isolating the submission path.
    dspy::test::writeFile(dir + "/c.yaml",
                          dspy::bench::benchOrchestratorConfig(grpc_port, http_port, dir, sync, "warn", 3600));
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

std::atomic<int> g_failures{0};

// True once the `bench` class has nothing queued or running: a phase must not pay for
// the executions of the tasks an earlier phase accepted (64 clients leave tens of
// thousands queued).
bool benchDrained(const Daemon& d) {
  auto stub = orchestrator::v1::OrchestratorService::NewStub(d.channel());
  orchestrator::v1::GetMetricsRequest req;
  req.add_metric_names("queue_depth");
  req.add_metric_names("orchestrator_inflight_tasks");
  orchestrator::v1::MetricsResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  if (!stub->GetMetrics(&ctx, req, &resp).ok()) return false;
  double left = 0;
  for (const auto& [k, v] : resp.metrics()) {
    if (k.find("class=\"bench\"") != std::string::npos) left += v;
  }
  return left == 0;
}

// Runs `clients` threads, each with its own channel, calling `call` for `seconds`.
// `per_client`, when given, receives each client's number of calls.
template <class Call>
dspy::bench::Summary load(const Daemon& d, int clients, double seconds, Call call,
                          std::vector<std::size_t>* per_client = nullptr) {
  if (!dspy::test::eventually([&] { return benchDrained(d); }, 120s)) {
    std::fprintf(stderr, "the bench class did not drain within 120 s\n");
    g_failures++;
  }
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
  if (per_client != nullptr) {
    per_client->clear();
    for (auto& v : lat) per_client->push_back(v.size());
  }
  g_failures += failures.load();
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

// POST /queue/submit on one kept-alive connection per client thread: a minimal
// HTTP/1.1 client (Content-Length framing), so that only the server is measured.
int g_http_port = 0;

struct KeptAlive {
  int port = 0;
  int fd = -1;
  std::string buf;
  ~KeptAlive() {
    if (fd >= 0) ::close(fd);
  }
  bool connect(int p) {
    if (fd >= 0 && port == p) return true;
    if (fd >= 0) ::close(fd);
    port = p;
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    timeval tv{10, 0};  // a starved client shows up as a failure after 10 s
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(p));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      fd = -1;
      return false;
    }
    buf.clear();
    return true;
  }
  // Sends one request and reads its answer; true on a 200.
  bool post(const std::string& path, const std::string& body) {
    const std::string req = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return false;
    std::size_t head_end;
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return false;
    }
    const auto cl = buf.find("Content-Length: ");
    if (cl == std::string::npos || cl > head_end) return false;
    const std::size_t length = std::stoul(buf.substr(cl + 16));
    while (buf.size() < head_end + 4 + length) {
      if (!fill()) return false;
    }
    const bool ok = buf.compare(9, 3, "200") == 0;
    buf.erase(0, head_end + 4 + length);
    return ok;
  }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
    buf.clear();
  }
  bool fill() {
    char tmp[4096];
    const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<std::size_t>(n));
    return true;
  }
};

bool httpSubmit(const std::shared_ptr<grpc::Channel>&, int client, long n) {
  thread_local KeptAlive conn;
  const std::string id = "h" + std::to_string(g_run.load()) + "-" + std::to_string(client) + "-" + std::to_string(n);
  const nlohmann::json body = {{"id", id}, {"class", g_class},
                               {"payload", {{"prompt", "a short payload of a typical size for an agent task"},
                                            {"step", std::to_string(n)}}}};
  if (!conn.connect(g_http_port)) return false;
  if (conn.post("/queue/submit", body.dump())) return true;
  // The server ends a kept-alive connection after 1,000 requests (Keep-Alive: max=1000);
  // like any HTTP client library, connect again and resend once.
  conn.reset();
  return conn.connect(g_http_port) && conn.post("/queue/submit", body.dump());
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
      // B2-HTTP: the same submissions over kept-alive HTTP beside gRPC, 1 and 64 clients.
      g_http_port = d.http_port;
      for (int clients : {1, 64}) {
        g_run++;
        std::vector<std::size_t> grpc_counts, http_counts;
        auto g = load(d, clients, seconds, submit, &grpc_counts);
        g_run++;
        auto h = load(d, clients, seconds, httpSubmit, &http_counts);
        const auto [lo, hi] = std::minmax_element(http_counts.begin(), http_counts.end());
        result["http_" + std::to_string(clients)] = {
            {"grpc_submit", dspy::bench::toJson(g)}, {"http_submit", dspy::bench::toJson(h)},
            {"p50_ratio_http_over_grpc", h.p50_us / g.p50_us},
            {"http_requests_per_client_min", *lo}, {"http_requests_per_client_max", *hi}};
        std::printf("%-8s %-7d %-22s %10.0f %10.0f %12.0f\n", sync.c_str(), clients, "SubmitTask (gRPC)", g.p50_us,
                    g.p99_us, g.per_second);
        std::printf("%-8s %-7d %-22s %10.0f %10.0f %12.0f   p50 ratio %.2f; per client %zu..%zu requests\n",
                    sync.c_str(), clients, "POST /queue/submit", h.p50_us, h.p99_us, h.per_second, h.p50_us / g.p50_us,
                    *lo, *hi);
      }
      // The same submissions into a class that only queues: what executing costs.
      g_class = "hold";
      for (int clients : {1, 16}) {
        g_run++;
        auto e = load(d, clients, seconds, echo);
        auto h = load(d, clients, seconds, submit);
        result["normal_" + std::to_string(clients) + "_submit_only"] = dspy::bench::toJson(h);
        result["normal_" + std::to_string(clients) + "_submit_only_p50_ratio"] = h.p50_us / e.p50_us;
        std::printf("%-8s %-7d %-22s %10.0f %10.0f %12.0f   (tasks queued, not run) p50 ratio %.2f\n", sync.c_str(),
                    clients, "SubmitTask, queue only", h.p50_us, h.p99_us, h.per_second, h.p50_us / e.p50_us);
      }
      g_class = "bench";
    }
    const auto [rss, hwm] = dspy::bench::rssMb(d.proc->pid());
    result[sync + "_rss_after_mb"] = rss;
    result[sync + "_rss_peak_mb"] = hwm;
    std::printf("orchestrator RSS (%s store): %.1f MB now, %.1f MB peak\n", sync.c_str(), rss, hwm);
  }
  result["failed_calls"] = g_failures.load();
  dspy::bench::writeJson(out, result);
  return g_failures.load() == 0 ? 0 : 1;
}
