// Shared daemon lifecycle.
#include "common/DaemonRuntime.h"

#include <absl/synchronization/mutex.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "common/CommandLine.h"
#include "common/ConfigSchema.h"
#include "common/Logging.h"

namespace dspy {

const char* version() { return DSPY_VERSION; }

std::variant<DaemonArgs, int> parseDaemonArgs(int argc, char** argv, const DaemonInfo& info) {
  DaemonArgs args;
  CLI::App app{info.name + ": " + info.summary, info.name};
  app.set_version_flag("--version", info.name + " " + version());
  app.add_option("--config", args.config_file,
                 "YAML config (default: $" + info.config_env + ", else " + info.default_config +
                     " if it exists, else built-in defaults)");
  app.add_flag("--check-config", args.check_only, "validate the config (file and environment) and exit");
  if (auto code = parseCommandLine(app, argc, argv)) return *code;
  const bool explicit_config = app.count("--config") > 0;
  if (!explicit_config) {
    if (const char* env = std::getenv(info.config_env.c_str()); env != nullptr && *env != '\0') {
      args.config_file = env;
    } else if (access(info.default_config.c_str(), R_OK) == 0) {
      args.config_file = info.default_config;
    }
  }
  return args;
}

namespace {

// Debian's Abseil keeps a lock-order graph for every absl::Mutex (gRPC's locks) to
// detect deadlocks; on the daemons' hot paths that bookkeeping cost a measurable share
// of each RPC (B2 profile). It is a debugging aid, off in production builds of gRPC.
const bool kAbslDeadlockTrackingOff = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

}  // namespace

DaemonRuntime::DaemonRuntime(std::string name, const ServerConfig& cfg)
    : name_(std::move(name)),
      cfg_(cfg),
      auth_(std::make_shared<TokenAuth>()),
      metrics_(name_, version()),
      grpc_(GrpcServer::Options{cfg.grpc_address, cfg.grpc_max_message_bytes, cfg.tls}, auth_),
      http_(HttpServer::Options{.address = cfg.http_address,
                                .max_body_bytes = cfg.http_max_body_bytes,
                                .tls = cfg.tls,
                                .max_connections = cfg.http_max_connections,
                                .keepalive_timeout_seconds = cfg.http_keepalive_timeout_seconds},
            auth_, metrics_) {
  auth_->setToken(cfg.auth_token);
  Metrics* m = &metrics_;
  http_.route("GET", "/metrics", [m](const HttpRequest&) {
    return HttpResponse{200, m->render(), Metrics::kContentType};
  });
  http_.route(
      "GET", "/health",
      [this](const HttpRequest&) {
        HealthReport report = health_ ? health_() : HealthReport{};
        const std::string& word = report.status == "down"       ? wording_.down
                                  : report.status == "degraded" ? wording_.degraded
                                                                : wording_.ok;
        nlohmann::json body = {
            {"status", word},
            {"health", report.status},
            {"service", name_},
            {"timestamp", std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count()},
            {"daemon", name_},
            {"version", version()},
            {"uptime_seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count()},
            {"components", report.components},
        };
        return HttpResponse{report.status == "down" ? 503 : 200, body.dump(), "application/json"};
      },
      /*is_public=*/true);
}

void setupLoggingFor(const ServerConfig& cfg, const std::string& daemon) { setupLogging(cfg.log, daemon); }

int reportStartFailure(const std::string& why) {
  spdlog::critical("cannot start: {}", why);
  return 1;
}

DaemonRuntime::~DaemonRuntime() { stop(); }

Status DaemonRuntime::start() {
  if (Status s = grpc_.start(); !s.ok()) return s;
  if (Status s = http_.start(); !s.ok()) {
    grpc_.shutdown(std::chrono::milliseconds(0));
    return s;
  }
  grpc_.setServing(true);
  spdlog::info("{} {} serving gRPC on {} (port {}), HTTP on {} (port {}){}{}", name_, version(), cfg_.grpc_address,
               grpc_.port(), cfg_.http_address, http_.port(), cfg_.tls.enabled() ? ", TLS" : "",
               cfg_.auth_token.empty() ? "" : ", bearer token required");
  return Status::Ok();
}

void DaemonRuntime::applyReload(const ServerConfig& next) {
  setupLogging(next.log, name_);
  auth_->setToken(next.auth_token);
  auto warn = [&](const char* key, bool changed) {
    if (changed) spdlog::warn("reload: '{}' changed; it takes effect after a restart", key);
  };
  warn("grpc.address", next.grpc_address != cfg_.grpc_address);
  warn("http.address", next.http_address != cfg_.http_address);
  warn("grpc.max_message_bytes", next.grpc_max_message_bytes != cfg_.grpc_max_message_bytes);
  warn("http.max_body_bytes", next.http_max_body_bytes != cfg_.http_max_body_bytes);
  warn("http.max_connections", next.http_max_connections != cfg_.http_max_connections);
  warn("http.keepalive_timeout_seconds", next.http_keepalive_timeout_seconds != cfg_.http_keepalive_timeout_seconds);
  warn("tls.*", next.tls.cert_file != cfg_.tls.cert_file || next.tls.key_file != cfg_.tls.key_file ||
                    next.tls.client_ca_file != cfg_.tls.client_ca_file);
  // Keep what is live in sync; restart-only keys keep their running values.
  cfg_.log = next.log;
  cfg_.auth_token = next.auth_token;
  cfg_.auth_token_file = next.auth_token_file;
}

void DaemonRuntime::run(SignalWatcher& signals, const std::function<Status()>& reload) {
  notifier_.ready("serving");
  notifier_.startWatchdog();
  while (true) {
    auto sig = signals.wait(std::chrono::milliseconds(1000));
    if (!sig) continue;
    if (*sig == SignalAction::Stop) break;
    notifier_.reloading();
    spdlog::info("SIGHUP: reloading configuration");
    if (Status s = reload(); !s.ok()) {
      spdlog::error("reload rejected, keeping the running configuration:\n{}", s.error());
      notifier_.status("serving; last reload rejected: config invalid");
    } else {
      spdlog::info("configuration reloaded");
      notifier_.status("serving; configuration reloaded");
    }
    notifier_.ready("serving");
  }
  spdlog::info("stop requested; shutting down");
  stop();
}

void DaemonRuntime::stop() {
  if (stopped_) return;
  stopped_ = true;
  notifier_.stopping();
  // In-flight calls get one second to finish; streams are cancelled after that.
  grpc_.shutdown(std::chrono::milliseconds(1000));
  http_.stop();
  spdlog::info("{} stopped", name_);
}

}  // namespace dspy
