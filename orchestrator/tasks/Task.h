// Task: what the orchestrator stores and schedules for one submitted task, and the pure
// rules around it (id syntax, status names, request identity, retry delays).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "common/Payload.h"
#include "common/Result.h"

namespace dspy::orchestrator {

enum class TaskStatus { Pending, Running, Completed, Failed, Cancelled };

const char* toString(TaskStatus s);
std::optional<TaskStatus> parseTaskStatus(const std::string& text);
inline bool isTerminal(TaskStatus s) {
  return s == TaskStatus::Completed || s == TaskStatus::Failed || s == TaskStatus::Cancelled;
}

// Retry policy of a class. Intervals follow Temporal's defaults (1 s, x2, capped at
// 100x the initial interval).
struct RetryPolicy {
  int max_attempts = 3;  // executions in total, 1 = no retry
  std::chrono::milliseconds initial_interval{1000};
  double multiplier = 2.0;
  std::chrono::milliseconds max_interval{100'000};
};

struct TaskRecord {
  std::int64_t seq = 0;  // submission order, unique, grows
  std::string id;
  std::string cls;
  Payload payload;  // as submitted (payload_json kept as sent)
  int priority = 0;
  std::string workflow_id;
  std::string request_hash;  // identity of the request, to accept an exact resubmission
  TaskStatus status = TaskStatus::Pending;
  int attempts = 0;  // executions started so far
  Payload result;
  std::string error;
  std::int64_t submitted_ms = 0;  // unix milliseconds
  std::int64_t started_ms = 0;
  std::int64_t finished_ms = 0;
  std::int64_t not_before_ms = 0;  // a retry waits until then
  std::optional<RetryPolicy> retry;  // the task's own policy (a workflow step's), else its class's
  // The configured class whose queue it waits in (its own class, or the default class
  // for an unconfigured name); set by the engine, stored so that the backlog can be read
  // back per queue.
  std::string queue;
};

// A retry override as stored ("" for none) and back; text that does not parse is none.
std::string retryToText(const std::optional<RetryPolicy>& p);
std::optional<RetryPolicy> retryFromText(const std::string& text);

// Ids: 1-128 characters of [A-Za-z0-9._:-], not starting with '.' or '-'.
Status validateTaskId(const std::string& id);
// A fresh id: "task-" + 24 hex characters (time + randomness, sortable by creation).
std::string generateTaskId();
// Hash of what makes two submissions the same request (class, payload, priority,
// workflow id); the id itself is not part of it.
std::string requestHash(const std::string& cls, const Payload& payload, int priority, const std::string& workflow_id);

// The wait before execution number `next_attempt` (2 = first retry).
std::chrono::milliseconds retryDelay(const RetryPolicy& policy, int next_attempt);

std::int64_t unixMillis();

}  // namespace dspy::orchestrator
