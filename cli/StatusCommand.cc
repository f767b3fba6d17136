// `dspy-agent status`: is everything that is required up? Both daemons' health (HTTP),
// env-manager's services (gRPC) and the orchestrator's queue depths and limits (HTTP).
#include "cli/StatusCommand.h"

#include <httplib.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/Addresses.h"
#include "cli/ServicesCommands.h"
#include "cli/Terminal.h"

namespace dspy::cli {
namespace {

struct Options {
  std::string em_http, orch_http, em_grpc;
  bool json = false;
};

// GET `path` from `address`: the JSON body, or why not.
Result<nlohmann::json> getJson(const std::string& address, const std::string& path, int* http_status) {
  httplib::Client client("http://" + address);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(5, 0);
  httplib::Headers headers;
  if (const char* token = std::getenv("DSPY_AGENT_TOKEN"); token != nullptr && *token != '\0') {
    headers.emplace("Authorization", std::string("Bearer ") + token);
  }
  auto res = client.Get(path, headers);
  if (!res) {
    if (res.error() == httplib::Error::Connection) {
      return Error{"not running: nothing answers on " + address +
                       " (start it with `dspy-agent start`, or `systemctl start dspy-agent.target`)",
                   ErrorKind::Unavailable};
    }
    return Error{"not reachable: " + httplib::to_string(res.error()), ErrorKind::Unavailable};
  }
  *http_status = res->status;
  auto body = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) return Error{"answered " + path + " with a body that is not JSON"};
  return body;
}

nlohmann::json daemonStatus(const std::string& address) {
  int code = 0;
  auto body = getJson(address, "/health", &code);
  nlohmann::json out = {{"address", address}};
  if (!body) {
    out["status"] = "unreachable";
    out["error"] = body.error();
    return out;
  }
  const auto& b = body.value();
  out["status"] = b.value("health", b.value("status", "unknown"));
  out["version"] = b.value("version", "");
  out["uptime_seconds"] = b.value("uptime_seconds", 0.0);
  if (b.contains("components")) out["components"] = b["components"];
  return out;
}

std::string col(const std::string& text, int width) {
  char b[256];
  std::snprintf(b, sizeof b, "%-*s", width, text.c_str());
  return b;
}

int status(const Options& o) {
  nlohmann::json out = nlohmann::json::object();
  out["env-manager"] = daemonStatus(o.em_http);
  out["orchestrator"] = daemonStatus(o.orch_http);
  std::vector<std::string> problems;
  for (const char* d : {"env-manager", "orchestrator"}) {
    if (out[d]["status"] != "ok") problems.push_back(std::string(d) + " is " + out[d]["status"].get<std::string>());
  }
  out["services"] = nullptr;
  if (out["env-manager"]["status"] != "unreachable") {
    auto services = servicesStatusAt(o.em_grpc);
    if (services) {
      out["services"] = services.value();
      for (const auto& [name, s] : services.value().items()) {
        if (s["required"].get<bool>() && s["status"] != "running") {
          problems.push_back("required service " + name + " is " + s["state"].get<std::string>());
        }
      }
    } else {
      out["services_error"] = "env-manager's gRPC at " + o.em_grpc + ": " + services.error();
      problems.push_back(out["services_error"].get<std::string>());
    }
  }
  out["queue"] = nullptr;
  if (out["orchestrator"]["status"] != "unreachable") {
    int code = 0;
    auto q = getJson(o.orch_http, "/queue/status", &code);
    if (q && code == 200) {
      out["queue"] = {{"pending", q.value().value("pending", 0)}, {"classes", q.value().value("classes", nlohmann::json::object())}};
    } else {
      out["queue_error"] = q ? "GET /queue/status answered " + std::to_string(code) : q.error();
    }
  }
  out["ok"] = problems.empty();
  out["problems"] = problems;
  if (o.json) {
    std::cout << out.dump(2) << "\n";
    return problems.empty() ? 0 : 1;
  }

  std::printf("%-13s %-22s %-12s %-8s %s\n", "DAEMON", "ADDRESS", "STATUS", "VERSION", "DETAIL");
  for (const char* d : {"env-manager", "orchestrator"}) {
    const auto& s = out[d];
    std::string detail = s.value("error", "");
    if (detail.empty() && s.contains("uptime_seconds")) {
      detail = "up " + std::to_string(static_cast<long long>(s["uptime_seconds"].get<double>())) + "s";
    }
    if (s.contains("components")) {
      for (const auto& [k, v] : s["components"].items()) detail += ", " + k + ": " + (v.is_string() ? v.get<std::string>() : v.dump());
    }
    const std::string st = s["status"].get<std::string>();
    std::printf("%-13s %-22s %s %-8s %s\n", d, s["address"].get<std::string>().c_str(),
                paint(col(st, 12), toneOf(st)).c_str(), s.value("version", "-").c_str(), detail.c_str());
  }
  if (out["services"].is_object()) {
    std::printf("\n%-18s %-12s %-9s %s\n", "SERVICE", "STATE", "REQUIRED", "DETAIL");
    for (const auto& [name, s] : out["services"].items()) {
      const std::string state = s["state"].get<std::string>();
      std::printf("%-18s %s %-9s %s\n", name.c_str(), paint(col(state, 12), toneOf(state)).c_str(),
                  s["required"].get<bool>() ? "yes" : "no", s["message"].get<std::string>().c_str());
    }
  } else if (out.contains("services_error")) {
    std::printf("\nservices: %s\n", out["services_error"].get<std::string>().c_str());
  }
  if (out["queue"].is_object()) {
    std::printf("\n%-16s %-10s %-9s %6s %9s %7s\n", "CLASS", "EXECUTOR", "LIMITER", "LIMIT", "INFLIGHT", "QUEUED");
    for (const auto& [name, c] : out["queue"]["classes"].items()) {
      std::printf("%-16s %-10s %-9s %6lld %9lld %7lld\n", name.c_str(), c.value("executor", "").c_str(),
                  c.value("limiter", "").c_str(), static_cast<long long>(c.value("limit", 0)),
                  static_cast<long long>(c.value("inflight", 0)), static_cast<long long>(c.value("queued", 0)));
    }
    std::printf("tasks not finished: %lld\n", static_cast<long long>(out["queue"]["pending"].get<long long>()));
  } else if (out.contains("queue_error")) {
    std::printf("\nqueue: %s\n", out["queue_error"].get<std::string>().c_str());
  }
  if (problems.empty()) {
    std::printf("\n%s: both daemons and every required service are up\n", paint("ok", Tone::Good).c_str());
  } else {
    std::printf("\n%s:", paint("not ok", Tone::Bad).c_str());
    for (std::size_t i = 0; i < problems.size(); ++i) std::printf("%s %s", i == 0 ? "" : ";", problems[i].c_str());
    std::printf("\n");
  }
  return problems.empty() ? 0 : 1;
}

}  // namespace

void addStatusCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<Options>();
  const Addresses& a = defaultAddresses();
  o->em_http = a.em_http;
  o->orch_http = a.orch_http;
  o->em_grpc = a.em_grpc;
  CLI::App* c = app.add_subcommand("status", "both daemons, the services and the queue at a glance; exit 0 only "
                                             "when both daemons and every required service are up");
  c->add_flag("--json", o->json, "JSON for scripts: {\"ok\", \"problems\", \"env-manager\", \"orchestrator\", "
                                 "\"services\", \"queue\"}");
  c->add_option("--env-manager-http", o->em_http, "env-manager's HTTP address (now " + o->em_http + ")");
  c->add_option("--orchestrator-http", o->orch_http, "the orchestrator's HTTP address (now " + o->orch_http + ")");
  c->add_option("--env-manager", o->em_grpc, "env-manager's gRPC address (now " + o->em_grpc + ")");
  c->callback([o, exit_code] { *exit_code = status(*o); });
}

}  // namespace dspy::cli
