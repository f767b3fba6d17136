// Task status names, id rules, request identity and the retry schedule.
#include "orchestrator/tasks/Task.h"

#include "common/Backoff.h"

#include "common/Text.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>

namespace dspy::orchestrator {

const char* toString(TaskStatus s) {
  switch (s) {
    case TaskStatus::Pending: return "pending";
    case TaskStatus::Running: return "running";
    case TaskStatus::Completed: return "completed";
    case TaskStatus::Failed: return "failed";
    case TaskStatus::Cancelled: return "cancelled";
  }
  return "unknown";
}

std::optional<TaskStatus> parseTaskStatus(const std::string& text) {
  for (auto s : {TaskStatus::Pending, TaskStatus::Running, TaskStatus::Completed, TaskStatus::Failed,
                 TaskStatus::Cancelled}) {
    if (text == toString(s)) return s;
  }
  return std::nullopt;
}

Status validateTaskId(const std::string& id) {
  if (id.empty() || id.size() > 128) {
    return Error{"task id must be 1 to 128 characters, got " + std::to_string(id.size()), ErrorKind::InvalidArgument};
  }
  if (id[0] == '.' || id[0] == '-') {
    return Error{"task id '" + id + "' must not start with '.' or '-'", ErrorKind::InvalidArgument};
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == ':' || c == '-';
    if (!ok) {
      return Error{"task id may hold only letters, digits and . _ : - (found a byte 0x" +
                       [&] {
                         char b[3];
                         std::snprintf(b, sizeof b, "%02x", static_cast<unsigned char>(c));
                         return std::string(b);
                       }() +
                       ")",
                   ErrorKind::InvalidArgument};
    }
  }
  return Status::Ok();
}

std::string generateTaskId() {
  static std::atomic<std::uint32_t> counter{std::random_device{}()};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const auto ms = static_cast<unsigned long long>(unixMillis());
  char buf[40];
  std::snprintf(buf, sizeof buf, "task-%011llx%05x%08x", ms & 0xfffffffffffULL,
                static_cast<unsigned>(counter.fetch_add(1) & 0xfffff), static_cast<unsigned>(rng() & 0xffffffff));
  return buf;
}

std::string requestHash(const std::string& cls, const Payload& payload, int priority, const std::string& workflow_id) {
  // Length-prefixed fields: unambiguous, and stable across versions and machines.
  StableHash h;
  h.addField(cls).addField(std::to_string(priority)).addField(workflow_id);
  for (const auto& [k, v] : payload) h.addField(k).addField(v);
  return h.hex();
}

std::chrono::milliseconds retryDelay(const RetryPolicy& policy, int next_attempt) {
  if (next_attempt <= 1) return std::chrono::milliseconds(0);
  return Backoff::nominal(BackoffPolicy{.initial = policy.initial_interval,
                                        .max = policy.max_interval,
                                        .multiplier = policy.multiplier,
                                        .jitter = 0},
                          next_attempt - 2);
}

std::string retryToText(const std::optional<RetryPolicy>& p) {
  if (!p) return "";
  return nlohmann::json{{"max_attempts", p->max_attempts},
                        {"initial_interval_ms", p->initial_interval.count()},
                        {"multiplier", p->multiplier},
                        {"max_interval_ms", p->max_interval.count()}}
      .dump();
}

std::optional<RetryPolicy> retryFromText(const std::string& text) {
  if (text.empty()) return std::nullopt;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  RetryPolicy p;
  p.max_attempts = std::max(1, j.value("max_attempts", 1));
  p.initial_interval = std::chrono::milliseconds(j.value("initial_interval_ms", std::int64_t{1000}));
  p.multiplier = j.value("multiplier", 2.0);
  p.max_interval = std::chrono::milliseconds(j.value("max_interval_ms", std::int64_t{100'000}));
  return p;
}

std::int64_t unixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace dspy::orchestrator
