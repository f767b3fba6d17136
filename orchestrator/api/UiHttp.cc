// The web page at /ui/: its assets (built into the binary) and the few routes only it
// needs: a Server-Sent Events stream of the orchestrator's events, the recent events,
// and env-manager's services relayed. Everything else the page reads through the
// public HTTP API (/tasks, /queue/status, /workflows, /workflow-runs).
#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "common/Text.h"
#include "orchestrator/api/HttpApi.h"
#include "orchestrator/events/EventHub.h"
#include "orchestrator/events/EventLog.h"
#include "orchestrator/envmanager/EnvManagerClient.h"

namespace dspy::orchestrator {

const std::map<std::string, std::string_view>& uiAssets();  // UiAssets.cc (generated)

namespace {

using json = nlohmann::json;

// How long a quiet stream waits before a comment line: a client that went away is
// noticed by the failed write at the latest then.
constexpr auto kStreamPing = std::chrono::seconds(5);
// Events an SSE client may ask to replay after a reconnect.
constexpr int kMaxReplay = 10'000;

HttpResponse asset(const std::string& name, const char* type) {
  const auto& all = uiAssets();
  auto it = all.find(name);
  if (it == all.end()) return HttpResponse::error(404, "no asset " + name);
  HttpResponse r;
  r.body = std::string(it->second);
  r.content_type = type;
  return r;
}

// One event as the page reads it: the contract's JSON plus the outbox position.
std::string sseMessage(const Event& e) {
  const std::string body = eventJson(e);
  return "id: " + std::to_string(e.seq) + "\ndata: {\"seq\":" + std::to_string(e.seq) + "," + body.substr(1) + "\n\n";
}

std::int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json serviceJson(const ServiceSnapshot& s) {
  json health = json::object();
  for (const auto& [k, v] : s.health) health[k] = v;
  auto at = [](std::int64_t ms) { return ms == 0 ? json(nullptr) : json(ms); };
  return {{"name", s.name},
          {"status", s.status},
          {"state", s.health.count("state") ? s.health.at("state") : s.status},
          {"message", s.health.count("state_message") ? s.health.at("state_message") : ""},
          {"required", !s.health.count("required") || s.health.at("required") == "true"},
          {"restarts", s.health.count("restarts") ? s.health.at("restarts") : "0"},
          {"container_id", s.container_id.substr(0, 12)},
          {"ports", s.ports},
          {"started_at", s.started_at},
          {"cpu_percent", s.cpu_percent},
          {"memory_bytes", s.memory_bytes},
          {"health", health},
          {"last_start",
           {{"requested_ms", at(s.requested_ms)},
            {"created_ms", at(s.created_ms)},
            {"started_ms", at(s.start_called_ms)},
            {"first_probe_ms", at(s.first_probe_ms)},
            {"ready_ms", at(s.ready_ms)},
            {"outcome", s.outcome}}}};
}

}  // namespace

void registerUiHttp(HttpServer& http, EventLog& log, EventHub& hub, EnvManagerClient& env_manager) {
  // The page and its assets are public: without a token it asks for one, and every
  // call it then makes carries it.
  http.route("GET", "/ui/", [](const HttpRequest&) { return asset("index.html", "text/html; charset=utf-8"); }, true);
  http.route("GET", "/ui", [](const HttpRequest&) { return asset("index.html", "text/html; charset=utf-8"); }, true);
  http.route("GET", "/ui/app.js",
             [](const HttpRequest&) { return asset("app.js", "text/javascript; charset=utf-8"); }, true);
  http.route("GET", "/ui/app.css", [](const HttpRequest&) { return asset("app.css", "text/css; charset=utf-8"); },
             true);

  http.route("GET", "/ui/api/services", [&env_manager](const HttpRequest&) {
    env_manager.followServices();  // from now on service changes become events
    auto services = env_manager.servicesStatus(std::chrono::seconds(5));
    if (!services) return HttpResponse::error(503, services.error());
    auto list = std::move(services).value();
    std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    json items = json::array();
    for (const auto& s : list) items.push_back(serviceJson(s));
    HttpResponse r;
    r.body = json{{"items", items}}.dump();
    return r;
  });

  http.route("GET", "/ui/api/events/recent", [&log](const HttpRequest& req) {
    int limit = 100;
    if (auto l = req.param("limit")) {
      auto v = parseInt(*l, 1, 1000);
      if (!v) return HttpResponse::error(400, "limit must be a whole number from 1 to 1000");
      limit = static_cast<int>(*v);
    }
    auto newest = log.seqBefore(nowNs() + 1);
    if (!newest) return HttpResponse::error(httpCode(newest.kind()), newest.error());
    auto events = log.readEvents(std::max<std::int64_t>(0, newest.value() - limit), limit, false);
    if (!events) return HttpResponse::error(httpCode(events.kind()), events.error());
    std::string body = "{\"last_seq\":" + std::to_string(newest.value()) + ",\"items\":[";
    bool first = true;
    for (const auto& e : events.value()) {
      const std::string j = eventJson(e);
      body += (first ? "" : ",") + std::string("{\"seq\":") + std::to_string(e.seq) + "," + j.substr(1);
      first = false;
    }
    body += "]}";
    HttpResponse r;
    r.body = std::move(body);
    return r;
  });

  // Server-Sent Events: every event from now on (after=SEQ first replays what came
  // after SEQ, as a reconnecting page asks). A client too slow for the event rate gets
  // an "overflow" event and the end of the stream; it reconnects with after=.
  http.routeStream("/ui/api/events", [&log, &hub](const HttpRequest& req) {
    HttpStream out;
    std::int64_t after = 0;
    if (auto a = req.param("after")) {
      auto v = parseInt(*a, 0);
      if (!v) {
        out.refusal = HttpResponse::error(400, "after must be an event sequence number (0 or more)");
        return out;
      }
      after = *v;
    }
    out.producer = [&log, &hub, after](const HttpStream::Write& write, std::stop_token stop) {
      auto sub = hub.subscribe({});
      struct Unsubscribe {
        EventHub& h;
        std::shared_ptr<EventHub::Subscription> s;
        ~Unsubscribe() { h.unsubscribe(s); }
      } guard{hub, sub};
      if (!write("retry: 1000\n: connected\n\n")) return;
      std::int64_t last = after;
      if (after > 0) {
        int sent = 0;
        while (!stop.stop_requested() && sent < kMaxReplay) {
          auto batch = log.readEvents(last, 500, false);
          if (!batch || batch.value().empty()) break;
          for (const auto& e : batch.value()) {
            last = e.seq;
            if (!write(sseMessage(e))) return;
            ++sent;
          }
        }
      }
      auto quiet_since = std::chrono::steady_clock::now();
      while (!stop.stop_requested()) {
        auto events = sub->next(stop, std::chrono::seconds(1));
        for (const auto& e : events) {
          if (e.seq <= last) continue;
          last = e.seq;
          if (!write(sseMessage(e))) return;
          quiet_since = std::chrono::steady_clock::now();
        }
        if (events.empty() && sub->overflowed()) {
          (void)write("event: overflow\ndata: {\"after\":" + std::to_string(last) + "}\n\n");
          return;
        }
        if (std::chrono::steady_clock::now() - quiet_since >= kStreamPing) {
          if (!write(": ping\n\n")) return;
          quiet_since = std::chrono::steady_clock::now();
        }
      }
    };
    return out;
  });
}

}  // namespace dspy::orchestrator
