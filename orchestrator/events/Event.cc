#include "orchestrator/events/Event.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <random>

#include <nlohmann/json.hpp>

namespace dspy::orchestrator {

Event makeEvent(std::string type, Payload data, std::string source) {
  Event e;
  e.id = newUuid();
  e.type = std::move(type);
  e.source = std::move(source);
  for (const char* key : {"task_id", "run_id", "workflow_id", "job_id", "service_name"}) {
    auto it = data.find(key);
    if (it != data.end() && !it->second.empty()) {
      e.resource_id = it->second;
      break;
    }
  }
  data["resource_id"] = e.resource_id;
  e.data = std::move(data);
  return e;
}

Event taskEvent(const TaskRecord& t, bool inserted) {
  Payload d{{"task_id", t.id}, {"class", t.cls}, {"status", toString(t.status)}};
  if (!t.workflow_id.empty()) d["workflow_id"] = t.workflow_id;
  if (inserted) {
    d["status"] = toString(TaskStatus::Pending);  // as submitted, whatever it became in the same write
    d["priority"] = std::to_string(t.priority);
    Event e = makeEvent("task_submitted", std::move(d));
    e.first_of_resource = true;  // stored only if the insert (a new id) succeeds
    return e;
  }
  d["attempt"] = std::to_string(t.attempts);
  std::string type;
  switch (t.status) {
    case TaskStatus::Running:
      type = "task_started";
      break;
    case TaskStatus::Completed:
      type = "task_completed";
      d["result"] = nlohmann::json(t.result).dump();
      d["duration_ms"] = std::to_string(std::max<std::int64_t>(0, t.finished_ms - t.started_ms));
      break;
    case TaskStatus::Failed:
      type = "task_failed";
      d["error"] = t.error;
      break;
    case TaskStatus::Cancelled:
      type = "task_cancelled";
      d["error"] = t.error;
      break;
    case TaskStatus::Pending:
      type = "task_retrying";
      d["error"] = t.error;
      d["not_before_ms"] = std::to_string(t.not_before_ms);
      break;
  }
  return makeEvent(std::move(type), std::move(d));
}

std::vector<Event> insertEvents(const TaskRecord& t) {
  std::vector<Event> out;
  out.push_back(taskEvent(t, true));
  if (t.status == TaskStatus::Running) out.push_back(taskEvent(t, false));
  return out;
}

const std::vector<std::string>& knownEventTypes() {
  static const std::vector<std::string> types{
      "task_submitted",          "task_started",          "task_completed",        "task_failed",
      "task_cancelled",          "task_retrying",         "workflow_started",      "workflow_step_started",
      "workflow_step_completed", "workflow_step_failed",  "workflow_reward",       "workflow_deployment",
      "workflow_completed",      "workflow_failed",       "workflow_cancelled",    "slurm_job_submitted",
      "slurm_job_started",       "slurm_job_completed",   "slurm_job_failed",      "service_status"};
  return types;
}

bool isKnownEventType(const std::string& type) {
  const auto& k = knownEventTypes();
  return std::find(k.begin(), k.end(), type) != k.end();
}

std::string rfc3339Ns(std::int64_t unix_ns) {
  std::int64_t secs = unix_ns / 1'000'000'000;
  std::int64_t frac = unix_ns % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    secs -= 1;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%09lldZ", static_cast<long long>(frac));
  return buf;
}

std::string eventJson(const Event& e) {
  nlohmann::json j;
  j["type"] = e.type;
  j["timestamp"] = rfc3339Ns(e.ts_ns);
  j["data"] = e.data;
  j["source"] = e.source;
  j["event_id"] = e.id;
  j["sequence"] = e.resource_seq;
  j["schema_version"] = kEventSchemaVersion;
  return j.dump();
}

std::string newUuid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-%04llx-%04llx-%012llx", static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xffff), static_cast<unsigned long long>(hi & 0xffff),
                static_cast<unsigned long long>(lo >> 48), static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

}  // namespace dspy::orchestrator
