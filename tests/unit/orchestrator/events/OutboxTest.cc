// The outbox of both stores: an event is stored with the write that causes it (and not
// when the write fails), per-resource sequence numbers, replay by time, delivery marks,
// pruning, and numbering that continues across a reopen. Also the event model's JSON.
#include <catch2/catch.hpp>

#include <algorithm>
#include <future>
#include <memory>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "orchestrator/events/EventLog.h"
#include "orchestrator/store/MemoryTaskStore.h"
#include "orchestrator/store/SqliteTaskStore.h"
#include "orchestrator/store/StoreBackup.h"
#include "tests/support/Process.h"

using namespace dspy::orchestrator;

namespace {

TaskRecord task(const std::string& id, std::int64_t seq, TaskStatus s = TaskStatus::Pending) {
  TaskRecord t;
  t.id = id;
  t.seq = seq;
  t.cls = "cpu_short";
  t.status = s;
  t.request_hash = "h";
  t.submitted_ms = 1000;
  return t;
}

template <class F>
dspy::Status wait(F&& fn) {
  std::promise<dspy::Status> p;
  fn([&](dspy::Status s) { p.set_value(s); });
  return p.get_future().get();
}

std::vector<Event> all(EventLog& log, bool pending_only = false) {
  auto r = log.readEvents(0, 1'000'000, pending_only);
  REQUIRE(r.ok());
  return r.value();
}

// The same checks on either store.
template <class Store>
void exercise(Store& s) {
  std::vector<Event> seen;
  std::mutex mu;
  s.setRelayed(true);
  s.setCommitted([&](const std::vector<Event>& es) {
    std::lock_guard lock(mu);
    seen.insert(seen.end(), es.begin(), es.end());
  });
  REQUIRE(wait([&](auto d) { s.insert(task("t1", 1), d); }).ok());
  REQUIRE(wait([&](auto d) { s.update(task("t1", 1, TaskStatus::Running), d); }).ok());
  REQUIRE(wait([&](auto d) { s.insert(task("t2", 2), d); }).ok());
  // A refused write (a duplicate id) stores no event.
  CHECK(wait([&](auto d) { s.insert(task("t1", 3), d); }).kind() == dspy::ErrorKind::AlreadyExists);
  auto done = task("t1", 1, TaskStatus::Completed);
  done.result = {{"answer", "42"}};
  REQUIRE(wait([&](auto d) { s.update(done, d); }).ok());

  const auto events = all(s);
  REQUIRE(events.size() == 4);
  CHECK(events[0].type == "task_submitted");
  CHECK(events[1].type == "task_started");
  CHECK(events[2].type == "task_submitted");
  CHECK(events[3].type == "task_completed");
  CHECK(events[0].resource_id == "t1");
  CHECK(events[2].resource_id == "t2");
  CHECK(events[0].resource_seq == 1);
  CHECK(events[1].resource_seq == 2);
  CHECK(events[2].resource_seq == 1);
  CHECK(events[3].resource_seq == 3);
  CHECK(nlohmann::json::parse(events[3].data.at("result")).at("answer") == "42");
  for (std::size_t i = 1; i < events.size(); ++i) {
    CHECK(events[i].seq == events[i - 1].seq + 1);
    CHECK(events[i].ts_ns >= events[i - 1].ts_ns);
    CHECK(events[i].id != events[i - 1].id);
  }
  {
    std::lock_guard lock(mu);
    REQUIRE(seen.size() == 4);
    CHECK(seen[3].id == events[3].id);
    CHECK(seen[3].seq == events[3].seq);
  }
  CHECK(s.outboxStats().pending == 4);
  CHECK(s.outboxStats().oldest_pending_ns == events[0].ts_ns);

  // Replay from a time: the events committed at or after it.
  CHECK(s.seqBefore(events[2].ts_ns).value() < events[2].seq);
  CHECK(s.seqBefore(events[3].ts_ns + 1).value() == events[3].seq);
  CHECK(s.seqBefore(0).value() == events[0].seq - 1);

  // Delivery marks: only pending events are read for the relay.
  REQUIRE(wait([&](auto d) { s.markDelivered({events[0].seq, events[1].seq}, d); }).ok());
  const auto pending = all(s, true);
  REQUIRE(pending.size() == 2);
  CHECK(pending[0].seq == events[2].seq);
  CHECK(s.outboxStats().pending == 2);

  // Pruning takes delivered events only.
  std::promise<dspy::Result<std::int64_t>> pruned;
  s.pruneEvents(INT64_MAX, 1000, [&](dspy::Result<std::int64_t> r) { pruned.set_value(r); });
  auto n = pruned.get_future().get();
  REQUIRE(n.ok());
  CHECK(n.value() == 2);
  CHECK(all(s).size() == 2);

  // Events of their own (no state change): still numbered per resource.
  REQUIRE(wait([&](auto d) { s.appendEvents({makeEvent("workflow_reward", {{"run_id", "r1"}})}, d); }).ok());
  CHECK(all(s).back().resource_id == "r1");
  CHECK(all(s).back().resource_seq == 1);
}

}  // namespace

TEST_CASE("outbox: events go with their writes, numbered per resource (memory store)", "[events]") {
  MemoryTaskStore s;
  exercise(s);
}

TEST_CASE("outbox: events go with their writes, numbered per resource (sqlite store)", "[events]") {
  const auto dir = dspy::test::tempDir();
  std::int64_t last_seq = 0;
  {
    auto s = SqliteTaskStore::open(dir, SyncMode::Normal);
    REQUIRE(s.ok());
    exercise(*s.value());
    last_seq = s.value()->outboxStats().last_seq;
  }
  // Reopened: pending events are still pending, and numbering goes on (t1's pruned
  // events still count for its sequence).
  auto s = SqliteTaskStore::open(dir, SyncMode::Normal);
  REQUIRE(s.ok());
  s.value()->setRelayed(true);
  CHECK(s.value()->outboxStats().pending == 3);
  CHECK(s.value()->outboxStats().last_seq == last_seq);
  auto failed = task("t1", 1, TaskStatus::Failed);
  REQUIRE(wait([&](auto d) { s.value()->update(failed, d); }).ok());
  const auto events = all(*s.value());
  CHECK(events.back().seq == last_seq + 1);
  CHECK(events.back().resource_id == "t1");
  CHECK(events.back().resource_seq == 4);
  CHECK(events.back().type == "task_failed");
}

TEST_CASE("outbox: without a relay, events are kept but not pending", "[events]") {
  MemoryTaskStore s;
  REQUIRE(wait([&](auto d) { s.insert(task("t1", 1), d); }).ok());
  CHECK(all(s).size() == 1);
  CHECK(all(s, true).empty());
  CHECK(s.outboxStats().pending == 0);
}

TEST_CASE("events: the contract's JSON with id, sequence and nanosecond time", "[events]") {
  Event e = makeEvent("task_completed", {{"task_id", "t9"}, {"run_id", "r"}});
  e.ts_ns = 1'700'000'000'123'456'789;
  e.resource_seq = 3;
  const auto j = nlohmann::json::parse(eventJson(e));
  CHECK(j.at("type") == "task_completed");
  CHECK(j.at("timestamp") == "2023-11-14T22:13:20.123456789Z");
  CHECK(j.at("data").at("resource_id") == "t9");  // task_id comes first
  CHECK(j.at("source") == "orchestrator");
  CHECK(j.at("sequence") == 3);
  CHECK(j.at("schema_version") == kEventSchemaVersion);
  const std::string id = j.at("event_id");
  CHECK(id.size() == 36);
  CHECK(id[14] == '4');
  CHECK(makeEvent("x", {{"job_id", "77"}}).resource_id == "77");
}

TEST_CASE("events: a type filter names what it does not know", "[events]") {
  CHECK(parseEventFilter({"task_completed", "workflow_*"}).ok());
  auto bad = parseEventFilter({"task_done", "nope_*"});
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error(), Catch::Contains("'task_done'") && Catch::Contains("'nope_*'") && Catch::Contains("known:"));
  CHECK(eventMatches({"workflow_*"}, "workflow_step_started"));
  CHECK_FALSE(eventMatches({"workflow_*"}, "task_started"));
  CHECK(eventMatches({}, "anything"));
}

namespace {

// The next event of a resource once the store has been reopened (nothing cached).
std::int64_t lastSeqOf(EventLog& log, const std::string& resource) {
  std::int64_t last = 0;
  for (const auto& e : all(log)) {
    if (e.resource_id == resource) last = std::max(last, e.resource_seq);
  }
  return last;
}

std::unique_ptr<SqliteTaskStore> openStore(const std::string& dir) {
  auto s = SqliteTaskStore::open(dir, SyncMode::Normal);
  REQUIRE(s.ok());
  return std::move(s.value());
}

void submitAndStart(SqliteTaskStore& st, const std::string& id, std::int64_t seq) {
  REQUIRE(wait([&](auto d) { st.insert(task(id, seq), d); }).ok());
  REQUIRE(wait([&](auto d) { st.update(task(id, seq, TaskStatus::Running), d); }).ok());
}

Event slurmEvent(const std::string& type, const std::string& task_id) {
  return makeEvent(type, {{"task_id", task_id}, {"attempt", "1"}, {"status", "pending"}});
}

}  // namespace

TEST_CASE("outbox: a task's numbering goes on after a reopen, whichever write stored its last event (sqlite store)",
          "[events]") {
  const auto dir = dspy::test::tempDir();
  {
    auto s = openStore(dir);
    auto& st = *s;
    submitAndStart(st, "t1", 1);
    // A task's event that is not a task event (its row is not written with it).
    REQUIRE(wait([&](auto d) { st.appendEvents({slurmEvent("slurm_job_submitted", "t1")}, d); }).ok());
    // A task's event written with no row write at all: the row still learns its number;
    // with no row, event_resources does.
    REQUIRE(wait([&](auto d) { st.insert(task("t2", 2), d); }).ok());
    REQUIRE(wait([&](auto d) { st.appendEvents({makeEvent("task_retrying", {{"task_id", "t2"}})}, d); }).ok());
    REQUIRE(wait([&](auto d) { st.appendEvents({makeEvent("task_started", {{"task_id", "ghost"}})}, d); }).ok());
    // Three writes of one task queued at once (they may share a transaction, where only
    // the last update writes the row).
    std::promise<dspy::Status> first, second, third;
    st.insert(task("t3", 3), [&](dspy::Status x) { first.set_value(x); });
    st.update(task("t3", 3, TaskStatus::Running), [&](dspy::Status x) { second.set_value(x); });
    st.update(task("t3", 3, TaskStatus::Completed), [&](dspy::Status x) { third.set_value(x); });
    REQUIRE(first.get_future().get().ok());
    REQUIRE(second.get_future().get().ok());
    REQUIRE(third.get_future().get().ok());
    CHECK(lastSeqOf(st, "t1") == 3);
    CHECK(lastSeqOf(st, "t2") == 2);
    CHECK(lastSeqOf(st, "ghost") == 1);
    CHECK(lastSeqOf(st, "t3") == 3);
  }
  auto s = openStore(dir);
  auto& st = *s;
  REQUIRE(wait([&](auto d) { st.update(task("t1", 1, TaskStatus::Completed), d); }).ok());
  CHECK(all(st).back().resource_seq == 4);
  // After its final event a task leaves the numbering cache: a late event looks it up.
  REQUIRE(wait([&](auto d) { st.appendEvents({slurmEvent("slurm_job_completed", "t1")}, d); }).ok());
  CHECK(all(st).back().resource_seq == 5);
  REQUIRE(wait([&](auto d) { st.update(task("t2", 2, TaskStatus::Running), d); }).ok());
  CHECK(all(st).back().resource_seq == 3);
  REQUIRE(wait([&](auto d) { st.appendEvents({makeEvent("task_completed", {{"task_id", "ghost"}})}, d); }).ok());
  CHECK(all(st).back().resource_seq == 2);
  REQUIRE(wait([&](auto d) { st.appendEvents({slurmEvent("slurm_job_completed", "t3")}, d); }).ok());
  CHECK(all(st).back().resource_seq == 4);
}

TEST_CASE("outbox: a version-5 store gets its tasks' event numbers from the outbox when it migrates, a copy kept",
          "[events]") {
  const auto dir = dspy::test::tempDir();
  {
    auto s = openStore(dir);
    auto& st = *s;
    submitAndStart(st, "t1", 1);
    REQUIRE(wait([&](auto d) { st.insert(task("t2", 2), d); }).ok());
    REQUIRE(wait([&](auto d) { st.appendEvents({slurmEvent("slurm_job_submitted", "t2")}, d); }).ok());
  }
  // Back to version 5's shape: no event_seq, every event in the resource index.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((dir + "/orchestrator.db").c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, R"sql(
    DROP INDEX outbox_resource;
    CREATE INDEX outbox_resource ON outbox (resource_id, resource_seq);
    ALTER TABLE tasks DROP COLUMN event_seq;
    PRAGMA user_version = 5;)sql",
                              nullptr, nullptr, &err);
  INFO((err != nullptr ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
  auto s = openStore(dir);
  // The store as it was before the migration is kept beside it, for an older release.
  auto kept = inspectStore(dir + "/orchestrator.db.before-schema-5");
  REQUIRE(kept.ok());
  CHECK(kept.value().schema_version == 5);
  CHECK(kept.value().rows.at("tasks") == 2);
  CHECK(kept.value().rows.at("outbox") == 4);
  auto& st = *s;
  REQUIRE(wait([&](auto d) { st.update(task("t1", 1, TaskStatus::Completed), d); }).ok());
  CHECK(all(st).back().resource_seq == 3);
  REQUIRE(wait([&](auto d) { st.update(task("t2", 2, TaskStatus::Running), d); }).ok());
  CHECK(all(st).back().resource_seq == 3);
}
