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

#include <CLI/CLI.hpp>

#include <memory>

namespace dspy::cli {
namespace {

namespace pb = env_manager::v1;

struct Options {
  std::string addr;
  bool json = false;
  bool follow = false;
  int tail = 0;
  int timeout = 0;
  std::int64_t since = 0;  // unix seconds
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
  req.set_since_timestamp(o.since);
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

int startServicesAt(const std::string& addr, const std::vector<std::string>& names) {
  auto channel = connect(addr, "env-manager");
  if (!channel) return 1;
  auto stub = pb::EnvManagerService::NewStub(channel);
  Options o;
  o.names = names;
  return start(*stub, o);
}

int stopServicesAt(const std::string& addr, const std::vector<std::string>& names, int timeout_seconds) {
  auto channel = connect(addr, "env-manager");
  if (!channel) return 1;
  auto stub = pb::EnvManagerService::NewStub(channel);
  Options o;
  o.names = names;
  o.timeout = timeout_seconds;
  return stop(*stub, o);
}

int serviceLogsAt(const std::string& addr, const std::string& name, bool follow, int tail, std::int64_t since) {
  auto channel = connect(addr, "env-manager");
  if (!channel) return 1;
  auto stub = pb::EnvManagerService::NewStub(channel);
  Options o;
  o.names = {name};
  o.follow = follow;
  o.tail = tail;
  o.since = since;
  return logs(*stub, o);
}

void addServicesCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<Options>();
  CLI::App* services = commandGroup(app, "services", "drive env-manager's stack: start, stop, restart, status, logs", &o->addr,
                                 "ENV_MANAGER_ADDR", "127.0.0.1:50100", "env-manager");
  auto run = [o, exit_code](int (*command)(pb::EnvManagerService::Stub&, const Options&)) {
    return runCommand<pb::EnvManagerService>(o, "env-manager", exit_code, command);
  };
  const auto seconds = CLI::Range(0, 3600);

  CLI::App* c = services->add_subcommand("start", "start services and what they depend on (all when none given), "
                                                  "showing each step as it happens");
  c->add_option("service", o->names, "services to start");
  c->callback(run(&start));

  c = services->add_subcommand("stop", "stop services and what depends on them, dependents first (all when none given)");
  c->add_option("service", o->names, "services to stop");
  c->add_option("--timeout", o->timeout, "seconds each container gets to stop (0: its stop_grace_period)")->check(seconds);
  c->callback(run(&stop));

  c = services->add_subcommand("restart", "stop one service and start it again");
  c->add_option("service", o->names, "the service")->required()->expected(1);
  c->add_option("--timeout", o->timeout, "seconds the container gets to stop (0: its stop_grace_period)")->check(seconds);
  c->callback(run(&restart));

  c = services->add_subcommand("status", "state, health, container, ports, CPU and memory of each service");
  c->add_option("service", o->names, "services to show (all when none given)");
  c->add_flag("--json", o->json, "JSON for scripts");
  c->callback(run(&status));

  c = services->add_subcommand("logs", "a service's container logs");
  c->add_option("service", o->names, "the service")->required()->expected(1);
  c->add_flag("-f,--follow", o->follow, "keep following new lines");
  c->add_option("--tail", o->tail, "only the last N lines (0: all)")->check(CLI::Range(0, 1'000'000));
  c->callback(run(&logs));
}

}  // namespace dspy::cli
