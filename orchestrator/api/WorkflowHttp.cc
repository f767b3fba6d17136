// HTTP workflow API (contract section 3): /workflows and /workflow-runs.
#include <future>
#include <nlohmann/json.hpp>

#include "common/Text.h"
#include "orchestrator/api/HttpApi.h"
#include "orchestrator/api/WorkflowViews.h"

namespace dspy::orchestrator {
namespace {

using json = nlohmann::json;

HttpResponse ok(const json& body, int status = 200) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

HttpResponse failed(const Error& e) { return HttpResponse::error(httpCode(e.kind), e.message); }

json stored(const WorkflowRecord& w) { return w.document; }

}  // namespace

void registerWorkflowHttp(HttpServer& http, WorkflowEngine& flows) {
  http.route("GET", "/workflows", [&flows](const HttpRequest&) {
    auto all = flows.listWorkflows();
    if (!all) return failed(all.fullError());
    json items = json::array();
    for (const auto& w : all.value()) items.push_back(workflowSummary(w));
    return ok({{"items", items}});
  });
  http.route("POST", "/workflows", [&flows](const HttpRequest& req) {
    auto w = flows.putWorkflow(req.body, "", WorkflowEngine::PutMode::Create);
    if (!w) return failed(w.fullError());
    return ok(stored(w.value()), 201);
  });
  http.route("GET", "/workflows/([^/]+)", [&flows](const HttpRequest& req) {
    auto w = flows.getWorkflow(req.matches[1]);
    if (!w) return failed(w.fullError());
    return ok(stored(w.value()));
  });
  http.route("PUT", "/workflows/([^/]+)", [&flows](const HttpRequest& req) {
    auto w = flows.putWorkflow(req.body, req.matches[1], WorkflowEngine::PutMode::Replace);
    if (!w) return failed(w.fullError());
    return ok(stored(w.value()));
  });
  http.route("GET", "/workflows/([^/]+)/history", [&flows](const HttpRequest& req) {
    auto h = flows.history(req.matches[1]);
    if (!h) return failed(h.fullError());
    json items = json::array();
    for (const auto& w : h.value()) {
      items.push_back({{"id", w.id},
                       {"version", w.version},
                       {"updated_at", rfc3339Ms(w.updated_ms)},
                       {"path", "/workflows/" + w.id + "/versions/" + std::to_string(w.version)}});
    }
    return ok({{"items", items}});
  });
  http.route("GET", "/workflows/([^/]+)/versions/([0-9]+)", [&flows](const HttpRequest& req) {
    auto h = flows.history(req.matches[1]);
    if (!h) return failed(h.fullError());
    const auto version = parseInt(req.matches[2], 1, INT32_MAX);
    for (const auto& w : h.value()) {
      if (version && w.version == *version) return ok(stored(w));
    }
    return HttpResponse::error(404, "workflow '" + req.matches[1] + "' has no version " + req.matches[2]);
  });
  http.route("POST", "/workflows/([^/]+)/runs", [&flows](const HttpRequest& req) {
    if (nestedDeeperThan(req.body)) return HttpResponse::error(400, tooDeepMessage("the body"));
    json body = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
    if (!body.is_object()) return HttpResponse::error(400, "body must be a JSON object");
    std::string key;
    if (body.contains("idempotency_key") && !body["idempotency_key"].is_null()) {
      if (!body["idempotency_key"].is_string()) return HttpResponse::error(400, "'idempotency_key' must be a string");
      key = body["idempotency_key"].get<std::string>();
    }
    Payload input;
    if (body.contains("input") && !body["input"].is_null()) {
      if (!body["input"].is_object()) return HttpResponse::error(400, "'input' must be a JSON object");
      for (const auto& [k, v] : body["input"].items()) input[k] = v.is_string() ? v.get<std::string>() : v.dump();
    }
    std::promise<Result<RunRecord>> answer;
    auto fut = answer.get_future();
    flows.startRun(req.matches[1], key, input, [&answer](Result<RunRecord> r) { answer.set_value(std::move(r)); });
    auto r = fut.get();
    if (!r) return failed(r.fullError());
    return ok(runJson(r.value(), flows.specOf(r.value().workflow_id, r.value().workflow_version).get()), 201);
  });
  http.route("GET", "/workflows/([^/]+)/runs", [&flows](const HttpRequest& req) {
    int limit = 20;
    if (auto l = req.param("limit")) {
      auto v = parseInt(*l, 1, 1000);
      if (!v) return HttpResponse::error(400, "limit must be a whole number from 1 to 1000");
      limit = static_cast<int>(*v);
    }
    if (auto w = flows.getWorkflow(req.matches[1]); !w) return failed(w.fullError());
    auto runs = flows.listRuns(req.matches[1], limit);
    if (!runs) return failed(runs.fullError());
    json items = json::array();
    for (const auto& r : runs.value()) {
      auto full = flows.getRun(r.id);
      const RunRecord& rec = full ? full.value() : r;
      items.push_back(runJson(rec, flows.specOf(rec.workflow_id, rec.workflow_version).get()));
    }
    return ok({{"items", items}});
  });
  http.route("GET", "/workflow-runs/([^/]+)", [&flows](const HttpRequest& req) {
    auto r = flows.getRun(req.matches[1]);
    if (!r) return failed(r.fullError());
    return ok(runJson(r.value(), flows.specOf(r.value().workflow_id, r.value().workflow_version).get()));
  });
  http.route("POST", "/workflow-runs/([^/]+)/cancel", [&flows](const HttpRequest& req) {
    if (Status s = flows.cancelRun(req.matches[1]); !s.ok()) return failed(s.fullError());
    auto r = flows.getRun(req.matches[1]);
    if (!r) return failed(r.fullError());
    return ok(runJson(r.value(), flows.specOf(r.value().workflow_id, r.value().workflow_version).get()));
  });
}

}  // namespace dspy::orchestrator
