// env-manager client commands for operators.
#include "cli/ServicesCommands.h"
#include "common/Text.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/GrpcClient.h"
#include "env_manager/v1/env_manager.grpc.pb.h"

namespace dspy::cli {
namespace {

namespace pb = env_manager::v1;

constexpr const char* kUsage = R"(usage: dspy-agent services COMMAND [options] [SERVICE...]

  start [SERVICE...]            start services and what they depend on (all when none given),
                                showing each step as it happens
  stop [--timeout S] [SERVICE...]  stop services and what depends on them, dependents first
  restart SERVICE [--timeout S]
  status [--json] [SERVICE...]  state, health, container, ports, CPU and memory of each service
  logs SERVICE [-f] [--tail N]  the service's container logs

env-manager address: --addr HOST:PORT (default $ENV_MANAGER_ADDR or 127.0.0.1:50100);
a bearer token is read from $DSPY_AGENT_TOKEN.
)";

struct Options {
  std::string addr;
  bool json = false;
  bool follow = false;
  int tail = 0;
  int timeout = 0;
  std::vector<std::string> names;
};

int start(pb::EnvManagerService::Stub& stub, const Options& o) {
  grpc::ClientContext ctx;
  withToken(ctx);
  pb::StartServicesRequest req;
  for (const auto& n : o.names) req.add_service_names(n);
  auto reader = stub.StartServices(&ctx, req);
  pb::ServiceStatusUpdate u;
  bool ok = false;
  const auto t0 = std::chrono::steady_clock::now();
  while (reader->Read(&u)) {
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (u.service_name().empty()) {
      ok = u.status() == "completed";
      std::printf("%6.2fs %s: %s\n", t, ok ? "done" : "FAILED", u.message().c_str());
    } else {
      std::printf("%6.2fs %-18s %-9s %3d%% %s\n", t, u.service_name().c_str(), u.status().c_str(), u.progress(),
                  u.message().c_str());
    }
    std::fflush(stdout);
  }
  auto s = reader->Finish();
  if (!s.ok()) return failed(s, "start");
  return ok ? 0 : 1;
}

int stop(pb::EnvManagerService::Stub& stub, const Options& o) {
  grpc::ClientContext ctx;
  withToken(ctx);
  pb::StopServicesRequest req;
  for (const auto& n : o.names) req.add_service_names(n);
  req.set_timeout_seconds(o.timeout);
  pb::StopServicesResponse resp;
  auto s = stub.StopServices(&ctx, req, &resp);
  if (!s.ok()) return failed(s, "stop");
  for (const auto& [name, result] : resp.service_results()) std::printf("%-18s %s\n", name.c_str(), result.c_str());
  return resp.success() ? 0 : 1;
}

int restart(pb::EnvManagerService::Stub& stub, const Options& o) {
  if (o.names.size() != 1) {
    std::fputs("restart takes exactly one SERVICE\n", stderr);
    return 2;
  }
  grpc::ClientContext ctx;
  withToken(ctx);
  pb::RestartServiceRequest req;
  req.set_service_name(o.names[0]);
  req.set_timeout_seconds(o.timeout);
  pb::RestartServiceResponse resp;
  auto s = stub.RestartService(&ctx, req, &resp);
  if (!s.ok()) return failed(s, "restart");
  std::printf("%s\n", resp.message().c_str());
  return resp.success() ? 0 : 1;
}

int status(pb::EnvManagerService::Stub& stub, const Options& o) {
  grpc::ClientContext ctx;
  withToken(ctx);
  pb::GetServicesStatusRequest req;
  for (const auto& n : o.names) req.add_service_names(n);
  pb::ServicesStatusResponse resp;
  auto s = stub.GetServicesStatus(&ctx, req, &resp);
  if (!s.ok()) return failed(s, "status");
  std::map<std::string, pb::ServiceStatus> sorted(resp.services().begin(), resp.services().end());
  if (o.json) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [name, st] : sorted) {
      const auto& hc = st.health_checks();
      out[name] = {{"status", st.status()},
                   {"state", hc.count("state") ? hc.at("state") : st.status()},
                   {"container_id", st.container_id()},
                   {"ports", std::vector<int>(st.ports().begin(), st.ports().end())},
                   {"started_at", st.started_at()},
                   {"health", std::map<std::string, std::string>(st.health_checks().begin(), st.health_checks().end())},
                   {"cpu_percent", st.resource_usage().cpu_percent()},
                   {"memory_bytes", st.resource_usage().memory_bytes()}};
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("%-18s %-10s %-13s %-12s %7s %8s  %s\n", "SERVICE", "STATUS", "CONTAINER", "PORTS", "CPU%", "MEM", "DETAIL");
  for (const auto& [name, st] : sorted) {
    std::string ports;
    for (int p : st.ports()) ports += (ports.empty() ? "" : ",") + std::to_string(p);
    const auto& h = st.health_checks();
    std::string detail = h.count("message") ? h.at("message") : "";
    // The finer state (healthy, waiting, blocked, crash_loop, ...) says more than the wire word.
    const std::string state = h.count("state") ? h.at("state") : st.status();
    if (h.count("state_message") && st.status() != "running") detail = h.at("state_message");
    char mem[32];
    std::snprintf(mem, sizeof mem, "%.1fM", static_cast<double>(st.resource_usage().memory_bytes()) / (1024.0 * 1024.0));
    std::printf("%-18s %-10s %-13s %-12s %7.1f %8s  %s\n", name.c_str(), state.c_str(),
                st.container_id().substr(0, 12).c_str(), ports.empty() ? "-" : ports.c_str(),
                st.resource_usage().cpu_percent(), mem, detail.c_str());
  }
  return 0;
}

int logs(pb::EnvManagerService::Stub& stub, const Options& o) {
  if (o.names.size() != 1) {
    std::fputs("logs takes exactly one SERVICE\n", stderr);
    return 2;
  }
  grpc::ClientContext ctx;
  withToken(ctx);
  pb::StreamLogsRequest req;
  req.set_service_name(o.names[0]);
  req.set_follow(o.follow);
  req.set_tail(o.tail);
  auto reader = stub.StreamLogs(&ctx, req);
  pb::LogEntry e;
  while (reader->Read(&e)) {
    const std::time_t t = static_cast<std::time_t>(e.timestamp());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[32];
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::printf("%s %s %s\n", ts, e.stream().c_str(), e.message().c_str());
    std::fflush(stdout);
  }
  auto s = reader->Finish();
  return s.ok() ? 0 : failed(s, "logs");
}

}  // namespace

int servicesCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  Options o;
  const char* env_addr = std::getenv("ENV_MANAGER_ADDR");
  o.addr = (env_addr != nullptr && *env_addr != '\0') ? env_addr : "127.0.0.1:50100";
  for (std::size_t i = 1; i < args.size(); ++i) {
    const auto& a = args[i];
    auto number = [&](int* out) {
      if (i + 1 >= args.size()) return false;
      auto v = dspy::parseInt(args[i + 1], 0, 1'000'000);
      if (!v) return false;
      *out = static_cast<int>(*v);
      ++i;
      return true;
    };
    if (a == "--json") o.json = true;
    else if (a == "-f" || a == "--follow") o.follow = true;
    else if (a == "--addr" && i + 1 < args.size()) o.addr = args[++i];
    else if (a == "--tail") {
      if (!number(&o.tail)) { std::fputs("--tail needs a number\n", stderr); return 2; }
    } else if (a == "--timeout") {
      if (!number(&o.timeout)) { std::fputs("--timeout needs a number of seconds\n", stderr); return 2; }
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "unknown option '%s'\n\n%s", a.c_str(), kUsage);
      return 2;
    } else {
      o.names.push_back(a);
    }
  }
  auto channel = connect(o.addr, "env-manager");
  if (!channel) return 1;
  auto stub = pb::EnvManagerService::NewStub(channel);
  const std::string& cmd = args[0];
  if (cmd == "start") return start(*stub, o);
  if (cmd == "stop") return stop(*stub, o);
  if (cmd == "restart") return restart(*stub, o);
  if (cmd == "status") return status(*stub, o);
  if (cmd == "logs") return logs(*stub, o);
  std::fprintf(stderr, "unknown services command '%s'\n\n%s", cmd.c_str(), kUsage);
  return 2;
}

}  // namespace dspy::cli
