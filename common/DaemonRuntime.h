// DaemonRuntime: what both daemons do the same way around their own services: command
// line, listeners (gRPC + HTTP with /metrics), systemd notifications, the signal loop
// (SIGTERM/SIGINT stop, SIGHUP reload) and graceful shutdown.
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <variant>

#include "common/GrpcServer.h"
#include "common/HttpServer.h"
#include "common/Metrics.h"
#include "common/Result.h"
#include "common/ServerConfig.h"
#include "common/Signals.h"
#include "common/SystemdNotifier.h"
#include "common/TokenAuth.h"

namespace dspy {

const char* version();

struct DaemonInfo {
  std::string name;            // "env-manager"
  std::string config_env;      // "ENV_MANAGER_CONFIG"
  std::string default_config;  // used when it exists and nothing else is given
  std::string summary;         // one line for --help
};

struct DaemonArgs {
  std::string config_file;  // empty = built-in defaults only
  bool check_only = false;
};

// Parses --config FILE, --check-config, --version, --help. Returns the exit code when
// the process should end right away (help, version, bad arguments).
std::variant<DaemonArgs, int> parseDaemonArgs(int argc, char** argv, const DaemonInfo& info);

// What GET /health reports: "ok", "degraded" (200) or "down" (503), with a status
// text per component.
struct HealthReport {
  std::string status = "ok";
  std::map<std::string, std::string> components;
};

// The word GET /health puts in "status" for each state. Old clients of each daemon read
// their own words (env-manager: "healthy"); the state itself is always in "health".
struct HealthWording {
  std::string ok = "ok";
  std::string degraded = "degraded";
  std::string down = "down";
};

class DaemonRuntime {
 public:
  DaemonRuntime(std::string name, const ServerConfig& cfg);
  ~DaemonRuntime();

  Metrics& metrics() { return metrics_; }
  HttpServer& http() { return http_; }
  GrpcServer& grpc() { return grpc_; }
  SystemdNotifier& systemd() { return notifier_; }

  // Supplies the component part of GET /health (public, no token needed).
  void setHealthReporter(std::function<HealthReport()> reporter) { health_ = std::move(reporter); }
  void setHealthWording(HealthWording wording) { wording_ = std::move(wording); }

  // Starts gRPC then HTTP; on failure nothing stays listening.
  Status start();
  // Applies what can change live (log level and format, auth token) and warns about
  // keys that need a restart.
  void applyReload(const ServerConfig& next);
  // Blocks until SIGTERM/SIGINT; on SIGHUP calls `reload` (which loads the config and,
  // if it is valid, applies it). Then shuts down gracefully.
  void run(SignalWatcher& signals, const std::function<Status()>& reload);
  void stop();

 private:
  std::string name_;
  ServerConfig cfg_;
  std::shared_ptr<TokenAuth> auth_;
  Metrics metrics_;
  GrpcServer grpc_;
  HttpServer http_;
  SystemdNotifier notifier_;
  std::function<HealthReport()> health_;
  HealthWording wording_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  bool stopped_ = false;
};

void setupLoggingFor(const ServerConfig& cfg, const std::string& daemon);
// Logs why the daemon cannot start; returns exit code 1.
int reportStartFailure(const std::string& why);

// One daemon: how to load its config and how to build its services on a runtime.
template <class Config>
struct DaemonSpec {
  DaemonInfo info;
  std::function<Result<Config>(const std::string& file, const config::EnvLookup& env)> load;
  // Registers services, routes and the health reporter before the listeners start.
  // The returned object owns them and lives until the daemon has stopped.
  std::function<Result<std::shared_ptr<void>>(DaemonRuntime&, const Config&)> setup;
  // Optional: applies what the daemon's own part can change live after a valid reload
  // (the server part is applied by the runtime). Gets what `setup` returned.
  std::function<void(const Config&, const std::shared_ptr<void>&)> reload;
};

// The whole life of a daemon process; returns its exit code (0 ok, 1 runtime error,
// 2 bad arguments or config). `Config` has a `ServerConfig server` member.
template <class Config>
int runDaemon(int argc, char** argv, const DaemonSpec<Config>& spec) {
  SignalWatcher signals;  // first: every later thread inherits the blocked mask
  auto parsed = parseDaemonArgs(argc, argv, spec.info);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  const auto args = std::get<DaemonArgs>(parsed);
  const auto env = config::processEnv();
  auto cfg = spec.load(args.config_file, env);
  if (!cfg) {
    std::fprintf(stderr, "%s: invalid configuration:\n%s\n", spec.info.name.c_str(), cfg.error().c_str());
    return 2;
  }
  if (args.check_only) {
    std::printf("%s: configuration OK\n", args.config_file.empty() ? "(defaults)" : args.config_file.c_str());
    return 0;
  }
  setupLoggingFor(cfg.value().server, spec.info.name);
  DaemonRuntime runtime(spec.info.name, cfg.value().server);
  auto owned = spec.setup(runtime, cfg.value());
  if (!owned) return reportStartFailure(owned.error());
  if (Status s = runtime.start(); !s.ok()) return reportStartFailure(s.error());
  runtime.run(signals, [&]() -> Status {
    auto next = spec.load(args.config_file, env);
    if (!next) return Error{next.error()};
    runtime.applyReload(next.value().server);
    if (spec.reload) spec.reload(next.value(), owned.value());
    return Status::Ok();
  });
  return 0;
}

}  // namespace dspy
