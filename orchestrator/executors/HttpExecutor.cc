// The http (env-runner) executor, over libcurl.
#include "orchestrator/executors/HttpExecutor.h"

#include <curl/curl.h>

#include <nlohmann/json.hpp>

namespace dspy::orchestrator {

void HttpExecutor::setUrl(std::string base_url) {
  std::lock_guard lock(mu_);
  if (base_url != base_url_) reach_ = "not contacted yet";
  base_url_ = std::move(base_url);
}

void HttpExecutor::noteReachable(bool reachable, const std::string& why) {
  std::lock_guard lock(mu_);
  reach_ = reachable ? "reachable" : why;
}

std::string HttpExecutor::health() const {
  std::lock_guard lock(mu_);
  return base_url_ + ": " + reach_;
}

bool HttpExecutor::unreachable() const {
  std::lock_guard lock(mu_);
  return reach_ != "reachable" && reach_ != "not contacted yet";
}

std::string HttpExecutor::url() const {
  std::lock_guard lock(mu_);
  return base_url_;
}

Status HttpExecutor::validate(const Payload&) const {
  if (url().empty()) {
    return Error{"the http executor has no runner URL: set executors.http.url or ENV_RUNNER_URL",
                 ErrorKind::FailedPrecondition};
  }
  return Status::Ok();
}

namespace {

std::size_t collect(char* p, std::size_t size, std::size_t n, void* out) {
  auto* s = static_cast<std::string*>(out);
  if (s->size() < 4 * 1024 * 1024) s->append(p, size * n);
  return size * n;
}

int progress(void* stop, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<std::stop_token*>(stop)->stop_requested() ? 1 : 0;
}

}  // namespace

ExecOutcome HttpExecutor::execute(const ExecRequest& req, std::stop_token cancel) {
  if (Status s = validate(req.payload); !s.ok()) return ExecOutcome::failure(s.error(), false);
  // The old runner reads id, class and payload; task_id and attempt are ours.
  nlohmann::json body = {{"id", req.task_id},        {"class", req.cls}, {"payload", req.payload},
                         {"task_id", req.task_id}, {"attempt", req.attempt}};
  const std::string text = body.dump();
  std::string answer;
  CURL* c = curl_easy_init();
  if (c == nullptr) return ExecOutcome::failure("curl_easy_init failed", true);
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  const std::string url = this->url() + "/tasks/execute";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, text.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(text.size()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &cancel);
  const CURLcode rc = curl_easy_perform(c);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  if (rc == CURLE_ABORTED_BY_CALLBACK) return ExecOutcome::failure("cancelled", false);
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return ExecOutcome::failure("runner did not answer within " + std::to_string(req.timeout.count()) + " ms", true);
  }
  if (rc != CURLE_OK) {
    const std::string why = std::string("runner unreachable at ") + url + ": " + curl_easy_strerror(rc);
    noteReachable(false, why);
    return ExecOutcome::failure(why, true);
  }
  noteReachable(true, "");
  auto j = nlohmann::json::parse(answer, nullptr, false);
  if (code < 200 || code >= 300) {
    std::string why = j.is_object() && j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>()
                                                                                      : answer.substr(0, 200);
    return ExecOutcome::failure("runner answered HTTP " + std::to_string(code) + ": " + why, code >= 500);
  }
  if (!j.is_object()) return ExecOutcome::failure("runner answered something that is not a JSON object", true);
  ExecOutcome o;
  // The old runner answers {"id", "embeddings", "latency_ms", "metadata"?} with no
  // success flag: a 2xx answer is success unless it says otherwise.
  if (j.contains("success") || j.contains("ok")) {
    const auto ok = j.contains("success") ? j["success"] : j["ok"];
    o.success = ok.is_boolean() && ok.get<bool>();
  } else {
    o.success = !(j.contains("error") && j["error"].is_string() && !j["error"].get<std::string>().empty());
  }
  auto asText = [](const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
  for (const auto& [k, v] : j.items()) {
    if (k != "success" && k != "ok" && k != "error" && k != "result") o.result[k] = asText(v);
  }
  if (j.contains("result") && j["result"].is_object()) {
    for (const auto& [k, v] : j["result"].items()) o.result[k] = asText(v);
  }
  if (j.contains("error") && j["error"].is_string()) o.error = j["error"].get<std::string>();
  if (!o.success && o.error.empty()) o.error = "runner reported failure";
  return o;
}

}  // namespace dspy::orchestrator
