// dspy-agent: the operators' command line for both daemons.
#include <httplib.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>
#include <string>
#include <vector>

#include "cli/EventsCommands.h"
#include "cli/LifecycleCommands.h"
#include "cli/ServicesCommands.h"
#include "cli/StoreCommands.h"
#include "cli/TasksCommands.h"
#include "cli/WorkflowsCommands.h"
#include "common/CommandLine.h"
#include "common/ConfigSchema.h"
#include "env_manager/EnvManagerConfig.h"
#include "env_manager/services/ServiceSpec.h"
#include "orchestrator/OrchestratorConfig.h"

namespace {

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
    p.error = res.error() == httplib::Error::Connection
                  ? "not running: nothing answers on " + address +
                        " (start it with `dspy-agent start`, or `systemctl start dspy-agent.target`)"
                  : "not reachable: " + httplib::to_string(res.error());
    return p;
  }
  p.reachable = true;
  p.http_status = res->status;
  p.body = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (p.body.is_discarded()) p.error = "answered with a body that is not JSON";
  return p;
}

int status(bool as_json, const std::string& em, const std::string& orch) {
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

// Which file is it? A services file has `services:` entries with an `image`; a daemon's
// file is told by keys only that daemon has. "" when it cannot be told (or not YAML).
std::string kindOf(const std::string& file, std::string* why) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::BadFile&) {
    *why = "cannot read " + file;
    return "";
  } catch (const YAML::Exception& e) {
    *why = file + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " + e.msg;
    return "";
  }
  if (!root.IsMap()) {
    *why = file + ": not a YAML mapping";
    return "";
  }
  if (root["services"] && root["services"].IsMap()) {
    for (const auto& kv : root["services"]) {
      if (kv.second.IsMap() && kv.second["image"]) return "services";
    }
  }
  for (const char* key : {"store", "executors", "workflows", "kafka", "events", "slurm", "env_manager"}) {
    if (root[key]) return "orchestrator";
  }
  for (const char* key : {"docker", "lifecycle", "services"}) {
    if (root[key]) return "env-manager";
  }
  *why = file + ": cannot tell which file this is (no key only the orchestrator's, env-manager's or a services "
                "file has); use --env-manager FILE or --orchestrator FILE";
  return "";
}

int configValidate(std::string em_file, std::string orch_file, const std::vector<std::string>& files) {
  const auto env = dspy::config::processEnv();
  if (em_file.empty() && orch_file.empty() && files.empty()) {
    em_file = envOr("ENV_MANAGER_CONFIG", "/etc/dspy-agent/env-manager.yaml");
    orch_file = envOr("ORCHESTRATOR_CONFIG", "/etc/dspy-agent/orchestrator.yaml");
  }
  int rc = 0;
  auto report = [&](const char* what, const std::string& file, const std::string& error) {
    if (error.empty()) {
      std::printf("%s: %s: OK\n", what, file.c_str());
    } else {
      std::printf("%s: %s: INVALID\n%s\n", what, file.c_str(), error.c_str());
      rc = 1;
    }
  };
  auto check = [&](const std::string& kind, const std::string& file) {
    if (kind == "env-manager") {
      auto r = dspy::envmanager::loadConfig(file, env);
      report("env-manager", file, r ? "" : r.error());
    } else if (kind == "orchestrator") {
      auto r = dspy::orchestrator::loadConfig(file, env);
      report("orchestrator", file, r ? "" : r.error());
    } else {
      auto r = dspy::envmanager::loadServicesFile(file);
      report("services file", file, r ? "" : r.error());
    }
  };
  if (!em_file.empty()) check("env-manager", em_file);
  if (!orch_file.empty()) check("orchestrator", orch_file);
  for (const auto& f : files) {
    std::string why;
    const std::string kind = kindOf(f, &why);
    if (kind.empty()) {
      std::printf("%s: INVALID\n%s\n", f.c_str(), why.c_str());
      rc = 1;
    } else {
      check(kind, f);
    }
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
  CLI::App app{"dspy-agent: the operators' command line for env-manager and the orchestrator"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("dspy-agent ") + DSPY_VERSION);
  app.footer("Exit codes: 0 ok, 1 something is unhealthy, failed or invalid, 2 bad usage.");
  int exit_code = 0;

  bool as_json = false;
  std::string em_http = envOr("ENV_MANAGER_METRICS_ADDR", "127.0.0.1:50101");
  std::string orch_http = envOr("ORCHESTRATOR_HTTP_ADDR", "127.0.0.1:9097");
  CLI::App* c = app.add_subcommand("status", "health of both daemons at a glance");
  c->add_flag("--json", as_json, "JSON for scripts");
  c->add_option("--env-manager-http", em_http, "env-manager's HTTP address ($ENV_MANAGER_METRICS_ADDR)");
  c->add_option("--orchestrator-http", orch_http, "the orchestrator's HTTP address ($ORCHESTRATOR_HTTP_ADDR)");
  c->callback([&] { exit_code = status(as_json, em_http, orch_http); });

  dspy::cli::addServicesCommands(app, &exit_code);
  dspy::cli::addTasksCommands(app, &exit_code);
  dspy::cli::addWorkflowsCommands(app, &exit_code);
  dspy::cli::addEventsCommand(app, &exit_code);
  dspy::cli::addStoreCommands(app, &exit_code);
  dspy::cli::addLifecycleCommands(app, &exit_code);

  CLI::App* config = app.add_subcommand("config", "check config files, list config keys");
  config->require_subcommand(1);
  std::string em_file, orch_file;
  std::vector<std::string> files;
  c = config->add_subcommand("validate", "check config files (and the environment) as the daemons would, "
                                         "without starting anything; a FILE's content tells whose it is "
                                         "(env-manager, orchestrator or a services file)");
  c->add_option("FILE", files, "files to check (default: both daemons' files in /etc/dspy-agent or "
                               "$ENV_MANAGER_CONFIG / $ORCHESTRATOR_CONFIG)");
  c->add_option("--env-manager", em_file, "env-manager's config file");
  c->add_option("--orchestrator", orch_file, "the orchestrator's config file");
  c->callback([&] { exit_code = configValidate(em_file, orch_file, files); });
  c = config->add_subcommand("keys", "list every config key of both daemons");
  c->callback([&] { exit_code = configKeys(); });

  c = app.add_subcommand("version", "print the CLI version");
  c->callback([&] { std::printf("dspy-agent %s\n", DSPY_VERSION); });

  if (auto code = dspy::parseCommandLine(app, argc, argv)) return *code;
  return exit_code;
}
