// env-manager client commands for operators.
#include "cli/ServicesCommands.h"
#include "common/Text.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/Addresses.h"
#include "cli/GrpcClient.h"
#include "cli/Terminal.h"
#include "env_manager/services/ServiceSpec.h"
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

void printJsonLine(const nlohmann::json& j) {
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

// --json: one JSON object per line, {"service", "status", "progress", "message"} for each
// step and {"done": true, "ok", "message"} at the end.
int start(pb::EnvManagerService::Stub& stub, const Options& o) {
  grpc::ClientContext ctx;
  withToken(ctx);
  pb::StartServicesRequest req;
  for (const auto& n : o.names) req.add_service_names(n);
  auto reader = stub.StartServices(&ctx, req);
  pb::ServiceStatusUpdate u;
  bool ok = false;
  bool ended = false;
  ProgressBoard board;
  while (reader->Read(&u)) {
    if (u.service_name().empty()) {
      ok = u.status() == "completed";
      ended = true;
      if (o.json) {
        printJsonLine({{"done", true}, {"ok", ok}, {"message", u.message()}});
      } else {
        board.finish(paint(ok ? "done" : "FAILED", ok ? Tone::Good : Tone::Bad) + ": " + u.message());
      }
    } else if (o.json) {
      printJsonLine({{"service", u.service_name()}, {"status", u.status()}, {"progress", u.progress()},
                     {"message", u.message()}});
    } else {
      board.update(u.service_name(), u.status(), u.progress(), u.message());
    }
  }
  auto s = reader->Finish();
  if (!s.ok()) return failed(s, "start");
  if (!ended) std::fprintf(stderr, "start: env-manager ended the stream without a result\n");
  return ok ? 0 : 1;
}

// --json: one JSON object per line, {"image", "status", "progress", "current", "total",
// "message"} for each step and {"done": true, "ok", "images": {image: complete|error}}.
int pull(pb::EnvManagerService::Stub& stub, const Options& o) {
  grpc::ClientContext ctx;
  withToken(ctx);
  pb::PullImagesRequest req;
  for (const auto& n : o.names) req.add_image_names(n);
  auto reader = stub.PullImages(&ctx, req);
  pb::ImagePullProgress p;
  std::map<std::string, std::string> final_status;  // image -> complete | error
  ProgressBoard board(40);
  while (reader->Read(&p)) {
    if (p.status() == "complete" || p.status() == "error") final_status[p.image_name()] = p.status();
    if (o.json) {
      printJsonLine({{"image", p.image_name()}, {"status", p.status()}, {"progress", p.progress_percent()},
                     {"current", p.current()}, {"total", p.total()}, {"message", p.message()}});
    } else {
      board.update(p.image_name(), p.status(), p.progress_percent(), p.message());
    }
  }
  auto s = reader->Finish();
  if (!s.ok()) return failed(s, "pull");
  int failures = 0;
  for (const auto& [image, st] : final_status) failures += st != "complete" ? 1 : 0;
  const bool ok = failures == 0 && !final_status.empty();
  if (o.json) {
    printJsonLine({{"done", true}, {"ok", ok}, {"images", final_status}});
  } else {
    board.finish(ok ? paint("done", Tone::Good) + ": " + std::to_string(final_status.size()) + " image(s) pulled"
                    : paint("FAILED", Tone::Bad) + ": " + std::to_string(failures) + " of " +
                          std::to_string(final_status.size()) + " image(s) not pulled");
  }
  return ok ? 0 : 1;
}

// Fills *out with {"ok", "services": {name: result}} when `out` is given, else prints.
int stop(pb::EnvManagerService::Stub& stub, const Options& o, nlohmann::json* out) {
  grpc::ClientContext ctx;
  withToken(ctx);
  pb::StopServicesRequest req;
  for (const auto& n : o.names) req.add_service_names(n);
  req.set_timeout_seconds(o.timeout);
  pb::StopServicesResponse resp;
  auto s = stub.StopServices(&ctx, req, &resp);
  if (!s.ok()) {
    if (out != nullptr) *out = {{"ok", false}, {"error", s.error_message()}};
    return failed(s, "stop");
  }
  std::map<std::string, std::string> results(resp.service_results().begin(), resp.service_results().end());
  if (out != nullptr) {
    *out = {{"ok", resp.success()}, {"services", results}};
  } else {
    for (const auto& [name, result] : results) {
      std::printf("%-18s %s\n", name.c_str(), paint(result, toneOf(result)).c_str());
    }
  }
  return resp.success() ? 0 : 1;
}

int stop(pb::EnvManagerService::Stub& stub, const Options& o) {
  if (!o.json) return stop(stub, o, nullptr);
  nlohmann::json out;
  const int rc = stop(stub, o, &out);
  std::printf("%s\n", out.dump(2).c_str());
  return rc;
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
                   {"required", !hc.count("required") || hc.at("required") == "true"},
                   {"restarts", hc.count("restarts") ? std::stoi(hc.at("restarts")) : 0},
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
    char state_col[32];
    std::snprintf(state_col, sizeof state_col, "%-10s", state.c_str());
    std::printf("%-18s %s %-13s %-12s %7.1f %8s  %s\n", name.c_str(), paint(state_col, toneOf(state)).c_str(),
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
    if (o.json) {
      std::printf("%s\n", nlohmann::json{{"time", ts}, {"timestamp", e.timestamp()}, {"stream", e.stream()},
                                          {"message", e.message()}}.dump().c_str());
    } else {
      std::printf("%s %s %s\n", ts, e.stream().c_str(), e.message().c_str());
    }
    std::fflush(stdout);
  }
  auto s = reader->Finish();
  return s.ok() ? 0 : failed(s, "logs");
}

}  // namespace

namespace {

// Runs `command` with `o` against env-manager at `addr`; 1 when it does not answer.
int at(const std::string& addr, const Options& o, int (*command)(pb::EnvManagerService::Stub&, const Options&)) {
  auto channel = connect(addr, "env-manager");
  if (!channel) return 1;
  auto stub = pb::EnvManagerService::NewStub(channel);
  return command(*stub, o);
}

}  // namespace

int startServicesAt(const std::string& addr, const std::vector<std::string>& names, bool json) {
  Options o;
  o.names = names;
  o.json = json;
  return at(addr, o, &start);
}

int stopServicesAt(const std::string& addr, const std::vector<std::string>& names, int timeout_seconds,
                   nlohmann::json* out) {
  auto channel = connect(addr, "env-manager");
  if (!channel) {
    if (out != nullptr) *out = {{"ok", false}, {"error", "env-manager is not reachable at " + addr}};
    return 1;
  }
  auto stub = pb::EnvManagerService::NewStub(channel);
  Options o;
  o.names = names;
  o.timeout = timeout_seconds;
  return stop(*stub, o, out);
}

int serviceLogsAt(const std::string& addr, const std::string& name, bool follow, int tail, std::int64_t since,
                  bool json) {
  Options o;
  o.names = {name};
  o.follow = follow;
  o.tail = tail;
  o.since = since;
  o.json = json;
  return at(addr, o, &logs);
}

int pullImagesAt(const std::string& addr, const std::vector<std::string>& images, bool json) {
  Options o;
  o.names = images;
  o.json = json;
  return at(addr, o, &pull);
}

Result<nlohmann::json> servicesStatusAt(const std::string& addr) {
  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(3))) {
    return Error{"nothing answers on " + addr, ErrorKind::Unavailable};
  }
  auto stub = pb::EnvManagerService::NewStub(channel);
  grpc::ClientContext ctx;
  unary(ctx);
  pb::ServicesStatusResponse resp;
  auto s = stub->GetServicesStatus(&ctx, pb::GetServicesStatusRequest{}, &resp);
  if (!s.ok()) return Error{s.error_message(), ErrorKind::Unavailable};
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, st] : resp.services()) {
    const auto& hc = st.health_checks();
    out[name] = {{"status", st.status()},
                 {"state", hc.count("state") ? hc.at("state") : st.status()},
                 {"required", !hc.count("required") || hc.at("required") == "true"},
                 {"message", hc.count("state_message") ? hc.at("state_message") : ""}};
  }
  return out;
}

// `services import FILE`: a compose file (or our own) read as env-manager would, printed
// as our YAML. Warnings go to stderr; a file env-manager would refuse exits 2.
struct ImportOptions {
  std::string file, output, project, format = "auto";
  std::vector<std::string> profiles;
  bool warn_unsupported = false;
};

int importServices(const ImportOptions& o) {
  envmanager::ServicesLoadOptions opts;
  opts.format = o.format == "native" ? envmanager::ServicesLoadOptions::Format::Native
                                     : envmanager::ServicesLoadOptions::Format::Compose;
  if (o.format == "auto") opts.format = envmanager::ServicesLoadOptions::Format::Auto;
  opts.profiles = o.profiles;
  opts.project = o.project;
  opts.unsupported_as_warnings = o.warn_unsupported;
  auto r = envmanager::loadServicesFile(o.file, opts);
  if (!r) {
    std::cerr << r.error() << "\n";
    return 2;
  }
  for (const auto& w : r.value().warnings) std::cerr << "warning: " << w << "\n";
  const std::string text = "# Imported from " + o.file + " (" + r.value().format + ") by dspy-agent services import.\n" +
                           envmanager::toNativeYaml(r.value());
  if (o.output.empty() || o.output == "-") {
    std::cout << text;
    return 0;
  }
  std::ofstream out(o.output, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) {
    std::cerr << "cannot write " << o.output << "\n";
    return 1;
  }
  std::cerr << "wrote " << o.output << " (" << r.value().services.size() << " services)\n";
  return 0;
}

void addServicesCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<Options>();
  CLI::App* services = commandGroup(app, "services", "drive env-manager's stack: start, stop, restart, status, logs", &o->addr,
                                 defaultAddresses().em_grpc, "ENV_MANAGER_ADDR", "env-manager");
  auto run = [o, exit_code](int (*command)(pb::EnvManagerService::Stub&, const Options&)) {
    return runCommand<pb::EnvManagerService>(o, "env-manager", exit_code, command);
  };
  const auto seconds = CLI::Range(0, 3600);

  CLI::App* c = services->add_subcommand("start", "start services and what they depend on (all when none given), "
                                                  "showing each step as it happens");
  c->add_option("service", o->names, "services to start");
  c->callback(run(&start));

  c->add_flag("--json", o->json, "one JSON object per line: each step, then {\"done\": true, \"ok\"}");

  c = services->add_subcommand("pull", "pull images from their registries with live progress (every image the "
                                       "services need when none given)");
  c->add_option("image", o->names, "images to pull");
  c->add_flag("--json", o->json, "one JSON object per line: each step, then {\"done\": true, \"ok\", \"images\"}");
  c->callback(run(&pull));

  c = services->add_subcommand("stop", "stop services and what depends on them, dependents first (all when none given)");
  c->add_option("service", o->names, "services to stop");
  c->add_flag("--json", o->json, "JSON for scripts: {\"ok\", \"services\": {name: result}}");
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
  c->add_flag("--json", o->json, "one JSON object per line: {\"time\", \"timestamp\", \"stream\", \"message\"}");
  c->callback(run(&logs));

  auto io = std::make_shared<ImportOptions>();
  c = services->add_subcommand("import", "read a docker-compose file as env-manager does and print it as env-manager's "
                                         "services YAML (no daemon needed)");
  c->add_option("file", io->file, "the compose file")->required();
  c->add_option("-o,--output", io->output, "write here instead of stdout");
  c->add_option("--profile", io->profiles, "enable a compose profile (repeatable; COMPOSE_PROFILES is read too)");
  c->add_option("--project", io->project, "project name (default: the file's name:, COMPOSE_PROJECT_NAME, its folder)");
  c->add_option("--format", io->format, "how to read FILE")->check(CLI::IsMember({"auto", "compose", "native"}));
  c->add_flag("--warn-unsupported", io->warn_unsupported,
              "a compose key env-manager does not support is a warning, not an error");
  c->callback([io, exit_code] { *exit_code = importServices(*io); });
}

}  // namespace dspy::cli
