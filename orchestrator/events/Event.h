// Event: the one event model of every producer (tasks, workflow runs and steps, Slurm
// jobs, service changes). The outbox stores events in the same transaction as the state
// change that causes them; the Kafka relay and StreamEvents read them from there.
//
// On the wire (Kafka value, JSONL spool) an event is the contract's JSON object:
//   {"type", "timestamp" (RFC3339, nanoseconds, UTC), "data" {..., "resource_id"},
//    "source", "event_id" (UUID), "sequence" (per resource, from 1), "schema_version"}
// `data` values are strings: text as it is, anything else as its JSON text.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/Payload.h"
#include "orchestrator/tasks/Task.h"

namespace dspy::orchestrator {

inline constexpr int kEventSchemaVersion = 1;

struct Event {
  std::int64_t seq = 0;           // position in the outbox (set when stored; grows)
  std::string id;                 // UUID v4, set when the event is made
  std::string type;               // task_submitted, workflow_step_completed, ...
  std::string resource_id;        // first of data's task_id, run_id, workflow_id, job_id, service_name
  std::int64_t resource_seq = 0;  // 1, 2, ... per resource (set when stored)
  std::int64_t ts_ns = 0;         // unix nanoseconds of the commit (set when stored)
  std::string source = "orchestrator";
  Payload data;                   // includes resource_id once made
  // `data` serialized ahead, off the store's writer thread (empty: serialized when
  // stored). Not part of the event's identity; set only once `data` is final.
  std::string data_json;
  // The resource's first event (a task's insert, a run's start): its sequence starts at
  // 1 without looking up earlier events. Not stored.
  bool first_of_resource = false;
};

// A fresh event with a new id; resource_id from `data` (first of task_id, run_id,
// workflow_id, job_id, then service_name), copied into data["resource_id"].
Event makeEvent(std::string type, Payload data, std::string source = "orchestrator");

// The event a task write causes: insert -> task_submitted; otherwise by the new status:
// running -> task_started, completed/failed/cancelled -> task_<status>, pending again
// -> task_retrying.
Event taskEvent(const TaskRecord& task, bool inserted);
// The events of a task's insert: task_submitted, and task_started too when the task is
// inserted already running (it took a free slot as it was admitted).
std::vector<Event> insertEvents(const TaskRecord& task);
// A task's own events (task_submitted, task_started, ...): the ones a task store writes
// with the task's row. Other events may name a task as their resource (slurm_job_*).
inline bool isTaskEvent(const Event& e) { return e.type.rfind("task_", 0) == 0; }

// Every type the orchestrator produces (filters naming another type are refused).
const std::vector<std::string>& knownEventTypes();
bool isKnownEventType(const std::string& type);

// The contract's JSON text of a stored event.
std::string eventJson(const Event& e);
// RFC3339 UTC with nine fraction digits: 2026-11-27T06:32:39.123456789Z
std::string rfc3339Ns(std::int64_t unix_ns);

// A random (version 4) UUID.
std::string newUuid();

}  // namespace dspy::orchestrator
