// HTTP task API: JSON in and out, the same rules and messages as the gRPC service.
#include "orchestrator/api/HttpApi.h"

#include <future>
#include <nlohmann/json.hpp>

#include "common/Text.h"
#include "orchestrator/events/Event.h"
#include "orchestrator/api/TaskViews.h"

namespace dspy::orchestrator {

nlohmann::json slurmJobJson(const SlurmJobRecord& j) {
  auto time = [](std::int64_t ms) { return rfc3339Ns(ms * 1'000'000); };
  nlohmann::json out{{"id", j.job_id},
                     {"task_id", j.task_id},
                     {"status", slurmStatusWord(j.state)},
                     {"slurm_state", j.state},
                     {"attempt", j.attempt},
                     {"template", j.template_name},
                     {"output_path", j.output_path}};
  if (j.submit_ms != 0) out["submit_time"] = time(j.submit_ms);
  if (j.start_ms != 0) out["start_time"] = time(j.start_ms);
  if (j.end_ms != 0) out["end_time"] = time(j.end_ms);
  if (j.exit_code >= 0) out["exit_code"] = j.exit_code;
  if (!j.error.empty()) out["error"] = j.error;
  if (!j.reason.empty()) out["reason"] = j.reason;
  if (!j.nodes.empty()) out["nodes"] = j.nodes;
  return out;
}

namespace {

// One task of POST /queue/submit: {"id"?, "class"?, "payload"?, "priority"?,
// "workflow_id"?}. "" when it is well formed, else why not.
std::string parseSubmit(const nlohmann::json& j, SubmitRequest* s) {
  if (!j.is_object()) return "a task must be a JSON object";
  auto str = [&](const char* key, std::string* out) -> bool {
    if (!j.contains(key) || j[key].is_null()) return true;
    if (!j[key].is_string()) return false;
    *out = j[key].get<std::string>();
    return true;
  };
  if (!str("id", &s->id)) return "'id' must be a string";
  if (!str("class", &s->cls)) return "'class' must be a string";
  if (!str("workflow_id", &s->workflow_id)) return "'workflow_id' must be a string";
  if (j.contains("priority")) {
    if (!j["priority"].is_number_integer()) return "'priority' must be an integer";
    const auto p = j["priority"].get<std::int64_t>();
    if (p < INT32_MIN || p > INT32_MAX) return "'priority' is out of range";
    s->priority = static_cast<int>(p);
  }
  if (j.contains("payload") && !j["payload"].is_null()) {
    if (!j["payload"].is_object()) return "'payload' must be a JSON object";
    for (const auto& [k, v] : j["payload"].items()) s->payload[k] = v.is_string() ? v.get<std::string>() : v.dump();
  }
  return "";
}

// An array body: each element is a task; the well-formed ones are submitted together
// (shared group commits) and every element gets its outcome, in order. 200 unless the
// array itself is refused (too long).
HttpResponse submitArray(TaskEngine& engine, const nlohmann::json& arr) {
  if (arr.size() > static_cast<std::size_t>(kMaxBatch)) {
    return HttpResponse::error(400, "a batch holds at most " + std::to_string(kMaxBatch) + " tasks, got " +
                                        std::to_string(arr.size()));
  }
  std::vector<nlohmann::json> results(arr.size());
  std::vector<SubmitRequest> batch;
  std::vector<std::size_t> where;  // batch index -> array index
  for (std::size_t i = 0; i < arr.size(); ++i) {
    SubmitRequest s;
    if (std::string why = parseSubmit(arr[i], &s); !why.empty()) {
      results[i] = {{"ok", false}, {"status", 400}, {"error", why}};
      continue;
    }
    results[i] = {{"ok", false}, {"id", s.id}};
    where.push_back(i);
    batch.push_back(std::move(s));
  }
  std::promise<std::vector<Result<std::string>>> answer;
  auto fut = answer.get_future();
  engine.submitBatch(std::move(batch), [&answer](std::vector<Result<std::string>> r) { answer.set_value(std::move(r)); });
  const auto outcomes = fut.get();
  int accepted = 0;
  for (std::size_t k = 0; k < outcomes.size(); ++k) {
    nlohmann::json& out = results[where[k]];
    if (outcomes[k]) {
      out = {{"ok", true}, {"id", outcomes[k].value()}};
      ++accepted;
    } else {
      out["status"] = httpCode(outcomes[k].kind());
      out["error"] = outcomes[k].error();
    }
  }
  HttpResponse resp;
  resp.body = nlohmann::json{{"ok", accepted == static_cast<int>(arr.size())}, {"accepted", accepted},
                             {"results", results}}
                  .dump();
  return resp;
}

}  // namespace

void registerHttpApi(HttpServer& http, TaskEngine& engine, SlurmExecutor* slurm, SlurmJobStore& jobs) {
  http.route("GET", "/slurm/status/([^/]+)", [&jobs](const HttpRequest& req) {
    if (Status s = validateTaskId(req.matches[1]); !s.ok()) return HttpResponse::error(400, s.error());
    auto job = jobs.latestSlurmJob(req.matches[1]);
    if (!job) return HttpResponse::error(httpCode(job.kind()), job.error());
    if (!job.value()) return HttpResponse::error(404, "no Slurm job for task '" + std::string(req.matches[1]) + "'");
    HttpResponse resp;
    resp.body = slurmJobJson(*job.value()).dump();
    return resp;
  });
  http.route("POST", "/queue/submit", [&engine, slurm](const HttpRequest& req) {
    if (nestedDeeperThan(req.body)) return HttpResponse::error(400, tooDeepMessage("the body"));
    auto j = nlohmann::json::parse(req.body, nullptr, false);
    if (j.is_array()) return submitArray(engine, j);
    if (!j.is_object()) return HttpResponse::error(400, "body must be a JSON object (one task) or an array of them");
    SubmitRequest s;
    if (std::string why = parseSubmit(j, &s); !why.empty()) return HttpResponse::error(400, why);
    const std::string cls = s.cls.empty() ? std::string("cpu_short") : s.cls;
    std::promise<Result<std::string>> answer;
    auto fut = answer.get_future();
    engine.submit(std::move(s), [&answer](Result<std::string> r) { answer.set_value(std::move(r)); });
    auto r = fut.get();
    if (!r) return HttpResponse::error(httpCode(r.kind()), r.error());
    HttpResponse resp;
    if (slurm != nullptr && engine.executorOf(cls) == "slurm") {
      // The old API answered with the Slurm job id: wait (bounded) for sbatch's answer.
      const std::string id = r.value();
      auto sub = slurm->awaitSubmission(id, std::chrono::milliseconds(slurm->config().submit_wait_ms));
      if (sub && !sub->job_id.empty()) {
        resp.body = nlohmann::json{{"ok", true}, {"id", id}, {"slurm_job_id", sub->job_id}, {"status", "submitted"}}.dump();
      } else if (sub) {
        resp.status = 400;
        resp.body = nlohmann::json{{"ok", false}, {"id", id}, {"status", "refused"}, {"error", sub->error}}.dump();
      } else {
        // Queued behind the class's limit, or slurmctld is away: the job id comes later
        // (GET /slurm/status/{id}).
        resp.status = 202;
        resp.body = nlohmann::json{{"ok", true}, {"id", id}, {"status", "queued"}}.dump();
      }
      return resp;
    }
    resp.body = nlohmann::json{{"ok", true}, {"id", r.value()}}.dump();
    return resp;
  });
  http.route("GET", "/queue/status", [&engine](const HttpRequest&) {
    const QueueStats s = engine.stats();
    nlohmann::json classes = nlohmann::json::object();
    for (const auto& [name, c] : s.classes) {
      classes[name] = {{"executor", c.executor}, {"limiter", c.limiter}, {"limit", c.limit},
                       {"inflight", c.inflight}, {"queued", c.queued}, {"queued_in_store", c.queued_in_store},
                       {"min_latency_ms", c.min_latency_ms}};
    }
    HttpResponse resp;
    resp.body = nlohmann::json{{"pending", s.pending},     {"done", s.done},           {"submitted", s.submitted},
                               {"processed", s.processed}, {"completed", s.completed}, {"failed", s.failed},
                               {"cancelled", s.cancelled}, {"classes", classes}}
                    .dump();
    return resp;
  });
  http.route("GET", "/tasks/([^/]+)", [&engine](const HttpRequest& req) {
    if (Status s = validateTaskId(req.matches[1]); !s.ok()) return HttpResponse::error(400, s.error());
    auto t = engine.get(req.matches[1]);
    if (!t) return HttpResponse::error(httpCode(t.kind()), t.error());
    HttpResponse resp;
    resp.body = toJson(t.value()).dump();
    return resp;
  });
  http.route("POST", "/tasks/([^/]+)/cancel", [&engine](const HttpRequest& req) {
    if (Status s = validateTaskId(req.matches[1]); !s.ok()) return HttpResponse::error(400, s.error());
    if (Status s = engine.cancel(req.matches[1]); !s.ok()) return HttpResponse::error(httpCode(s.kind()), s.error());
    auto t = engine.get(req.matches[1]);
    HttpResponse resp;
    resp.body = nlohmann::json{{"ok", true}, {"status", t ? toString(t.value().status) : ""}}.dump();
    return resp;
  });
  http.route("GET", "/tasks", [&engine](const HttpRequest& req) {
    std::int64_t limit = 0;
    if (auto l = req.param("limit")) {
      auto v = parseInt(*l);
      if (!v) return HttpResponse::error(400, "limit must be an integer");
      limit = *v;
    }
    auto f = makeFilter(req.param("status").value_or(""), req.param("class").value_or(""),
                        req.param("workflow_id").value_or(""), limit, req.param("page_token").value_or(""));
    if (!f) return HttpResponse::error(400, f.error());
    auto rows = engine.list(f.value());
    if (!rows) return HttpResponse::error(httpCode(rows.kind()), rows.error());
    nlohmann::json items = nlohmann::json::array();
    for (const auto& t : rows.value()) items.push_back(toJson(t));
    nlohmann::json body = {{"items", items}};
    if (static_cast<int>(rows.value().size()) == f.value().limit) {
      body["next_page_token"] = std::to_string(rows.value().back().seq);
    }
    HttpResponse resp;
    resp.body = body.dump();
    return resp;
  });
}

}  // namespace dspy::orchestrator
