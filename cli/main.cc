// dspy-agent: the operators' command line for both daemons.
#include <httplib.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/ServicesCommands.h"
#include "cli/TasksCommands.h"
#include "common/ConfigSchema.h"
#include "env_manager/EnvManagerConfig.h"
#include "orchestrator/OrchestratorConfig.h"

namespace {

constexpr const char* kUsage = R"(usage: dspy-agent COMMAND [options]

commands:
  status [--json]                    health of both daemons at a glance
  services start|stop|restart|status|logs ...
                                     drive env-manager's stack (services --help)
  tasks submit|show|list|cancel ...  the orchestrator's tasks (tasks --help)
  config validate [--env-manager FILE] [--orchestrator FILE]
                                     check config files (and the environment) as the
                                     daemons would, without starting anything
  config keys                        list every config key of both daemons
  version                            print the CLI version

addresses: --env-manager-http HOST:PORT (default $ENV_MANAGER_METRICS_ADDR or 127.0.0.1:50101),
           --orchestrator-http HOST:PORT (default $ORCHESTRATOR_HTTP_ADDR or 127.0.0.1:9097);
a bearer token is read from $DSPY_AGENT_TOKEN.
exit codes: 0 ok, 1 something is unhealthy or invalid, 2 bad usage.
)";

std::string envOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : fallback;
}

struct Probe {
  std::string name;
  std::string address;
  bool reachable = false;
  int http_status = 0;
  nlohmann::json body;
  std::string error;
};

Probe probeHealth(const std::string& name, const std::string& address) {
  Probe p;
  p.name = name;
  p.address = address;
  httplib::Client client("http://" + address);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(5, 0);
  httplib::Headers headers;
  if (const char* token = std::getenv("DSPY_AGENT_TOKEN"); token != nullptr && *token != '\0') {
    headers.emplace("Authorization", std::string("Bearer ") + token);
  }
  auto res = client.Get("/health", headers);
  if (!res) {
    p.error = "not reachable: " + httplib::to_string(res.error());
    return p;
  }
  p.reachable = true;
  p.http_status = res->status;
  p.body = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (p.body.is_discarded()) p.error = "answered with a body that is not JSON";
  return p;
}

int status(const std::vector<std::string>& args) {
  bool as_json = false;
  std::string em = envOr("ENV_MANAGER_METRICS_ADDR", "127.0.0.1:50101");
  std::string orch = envOr("ORCHESTRATOR_HTTP_ADDR", "127.0.0.1:9097");
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") as_json = true;
    else if (args[i] == "--env-manager-http" && i + 1 < args.size()) em = args[++i];
    else if (args[i] == "--orchestrator-http" && i + 1 < args.size()) orch = args[++i];
    else {
      std::fprintf(stderr, "status: unknown option '%s'\n", args[i].c_str());
      return 2;
    }
  }
  std::vector<Probe> probes{probeHealth("env-manager", em), probeHealth("orchestrator", orch)};
  bool all_ok = true;
  nlohmann::json out = nlohmann::json::object();
  for (const auto& p : probes) {
    const std::string state =
        !p.reachable ? "unreachable"
                     : (p.body.is_object() ? p.body.value("health", p.body.value("status", "unknown")) : "unknown");
    if (state != "ok") all_ok = false;
    out[p.name] = {{"address", p.address}, {"status", state}};
    if (!p.error.empty()) out[p.name]["error"] = p.error;
    if (p.body.is_object()) {
      out[p.name]["version"] = p.body.value("version", "");
      out[p.name]["uptime_seconds"] = p.body.value("uptime_seconds", 0.0);
      if (p.body.contains("components")) out[p.name]["components"] = p.body["components"];
    }
  }
  if (as_json) {
    std::cout << out.dump(2) << "\n";
  } else {
    std::printf("%-13s %-22s %-12s %-8s %s\n", "DAEMON", "ADDRESS", "STATUS", "VERSION", "DETAIL");
    for (const auto& p : probes) {
      const auto& o = out[p.name];
      std::string detail = o.value("error", "");
      if (detail.empty() && o.contains("uptime_seconds")) {
        detail = "up " + std::to_string(static_cast<long long>(o["uptime_seconds"].get<double>())) + "s";
      }
      if (o.contains("components")) {
        for (const auto& [k, v] : o["components"].items()) detail += ", " + k + ": " + v.get<std::string>();
      }
      std::printf("%-13s %-22s %-12s %-8s %s\n", p.name.c_str(), p.address.c_str(),
                  o["status"].get<std::string>().c_str(), o.value("version", "-").c_str(), detail.c_str());
    }
  }
  return all_ok ? 0 : 1;
}

int configValidate(const std::vector<std::string>& args) {
  const auto env = dspy::config::processEnv();
  std::string em_file;
  std::string orch_file;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--env-manager" && i + 1 < args.size()) em_file = args[++i];
    else if (args[i] == "--orchestrator" && i + 1 < args.size()) orch_file = args[++i];
    else {
      std::fprintf(stderr, "config validate: unknown option '%s'\n", args[i].c_str());
      return 2;
    }
  }
  if (em_file.empty() && orch_file.empty()) {
    em_file = envOr("ENV_MANAGER_CONFIG", "/etc/dspy-agent/env-manager.yaml");
    orch_file = envOr("ORCHESTRATOR_CONFIG", "/etc/dspy-agent/orchestrator.yaml");
  }
  int rc = 0;
  auto report = [&](const char* daemon, const std::string& file, const std::string& error) {
    if (error.empty()) {
      std::printf("%s: %s: OK\n", daemon, file.c_str());
    } else {
      std::printf("%s: %s: INVALID\n%s\n", daemon, file.c_str(), error.c_str());
      rc = 1;
    }
  };
  if (!em_file.empty()) {
    auto r = dspy::envmanager::loadConfig(em_file, env);
    report("env-manager", em_file, r ? "" : r.error());
  }
  if (!orch_file.empty()) {
    auto r = dspy::orchestrator::loadConfig(orch_file, env);
    report("orchestrator", orch_file, r ? "" : r.error());
  }
  return rc;
}

int configKeys() {
  {
    dspy::envmanager::EnvManagerConfig cfg;
    dspy::config::Schema s;
    dspy::envmanager::describe(s, cfg);
    for (const auto& k : s.keys()) std::printf("env-manager   %s\n", k.c_str());
  }
  dspy::orchestrator::OrchestratorConfig cfg;
  dspy::config::Schema s;
  dspy::orchestrator::describe(s, cfg);
  for (const auto& k : s.keys()) std::printf("orchestrator  %s\n", k.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "status") return status(rest);
  if (cmd == "services") return dspy::cli::servicesCommand(rest);
  if (cmd == "tasks") return dspy::cli::tasksCommand(rest);
  if (cmd == "version") {
    std::printf("dspy-agent %s\n", DSPY_VERSION);
    return 0;
  }
  if (cmd == "config" && !rest.empty() && rest[0] == "validate") {
    return configValidate(std::vector<std::string>(rest.begin() + 1, rest.end()));
  }
  if (cmd == "config" && !rest.empty() && rest[0] == "keys") return configKeys();
  std::fprintf(stderr, "dspy-agent: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
  return 2;
}
