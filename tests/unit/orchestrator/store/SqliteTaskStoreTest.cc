// The SQLite task store: durability across reopen, duplicate ids, filters and paging,
// group commit, schema version guard.
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <sys/stat.h>

#include <fstream>
#include <future>

#include "orchestrator/store/SqliteTaskStore.h"
#include "tests/support/Process.h"

using namespace dspy::orchestrator;

namespace {

TaskRecord task(const std::string& id, std::int64_t seq, TaskStatus s = TaskStatus::Pending, std::string cls = "a") {
  TaskRecord t;
  t.id = id;
  t.seq = seq;
  t.cls = std::move(cls);
  t.status = s;
  t.payload = {{"k", "v"}, {"n", "1"}};
  t.request_hash = "h" + id;
  t.submitted_ms = 1000 + seq;
  return t;
}

dspy::Status insertNow(TaskStore& store, const TaskRecord& t) {
  std::promise<dspy::Status> p;
  store.insert(t, [&](dspy::Status s) { p.set_value(s); });
  return p.get_future().get();
}

}  // namespace

TEST_CASE("sqlite store: a written task survives closing and reopening", "[orchestrator][store]") {
  const auto dir = dspy::test::tempDir();
  {
    auto store = SqliteTaskStore::open(dir, SyncMode::Normal);
    REQUIRE(store.ok());
    REQUIRE(insertNow(*store.value(), task("t1", 1)).ok());
    auto t = task("t1", 1);
    t.status = TaskStatus::Completed;
    t.attempts = 2;
    t.result = {{"exit_code", "0"}};
    t.finished_ms = 99;
    std::promise<dspy::Status> p;
    store.value()->update(t, [&](dspy::Status s) { p.set_value(s); });
    REQUIRE(p.get_future().get().ok());
  }
  auto store = SqliteTaskStore::open(dir, SyncMode::Full);
  REQUIRE(store.ok());
  auto got = store.value()->get("t1");
  REQUIRE(got.ok());
  REQUIRE(got.value().has_value());
  CHECK(got.value()->status == TaskStatus::Completed);
  CHECK(got.value()->attempts == 2);
  CHECK(got.value()->payload == dspy::Payload{{"k", "v"}, {"n", "1"}});
  CHECK(got.value()->result.at("exit_code") == "0");
  CHECK(got.value()->finished_ms == 99);
  CHECK_FALSE(store.value()->get("missing").value().has_value());
  CHECK(store.value()->maxSeq().value() == 1);
}

TEST_CASE("sqlite store: a duplicate id fails alone; the rest of its batch commits", "[orchestrator][store]") {
  auto store = SqliteTaskStore::open(dspy::test::tempDir(), SyncMode::Normal);
  REQUIRE(store.ok());
  auto& s = *store.value();
  REQUIRE(insertNow(s, task("dup", 1)).ok());
  std::vector<std::promise<dspy::Status>> results(50);
  for (int i = 0; i < 50; ++i) {
    const auto t = i == 25 ? task("dup", 100) : task("b" + std::to_string(i), i + 2);
    s.insert(t, [&results, i](dspy::Status st) { results[static_cast<std::size_t>(i)].set_value(st); });
  }
  for (int i = 0; i < 50; ++i) {
    auto st = results[static_cast<std::size_t>(i)].get_future().get();
    if (i == 25) {
      CHECK(st.kind() == dspy::ErrorKind::AlreadyExists);
    } else {
      CHECK(st.ok());
    }
  }
  CHECK(s.countByStatus().value().at(TaskStatus::Pending) == 50);
}

TEST_CASE("sqlite store: filters and paging; unfinished tasks in order", "[orchestrator][store]") {
  auto store = SqliteTaskStore::open(dspy::test::tempDir(), SyncMode::Normal);
  REQUIRE(store.ok());
  auto& s = *store.value();
  for (int i = 1; i <= 30; ++i) {
    const auto st = i % 3 == 0 ? TaskStatus::Completed : (i % 3 == 1 ? TaskStatus::Pending : TaskStatus::Running);
    s.insert(task("t" + std::to_string(i), i, st, i <= 15 ? "a" : "b"), nullptr);
  }
  s.flush();
  auto page1 = s.list(TaskFilter{.status = TaskStatus::Completed, .limit = 4}).value();
  REQUIRE(page1.size() == 4);
  CHECK(page1.front().id == "t3");
  auto page2 = s.list(TaskFilter{.status = TaskStatus::Completed, .after_seq = page1.back().seq, .limit = 4}).value();
  REQUIRE(page2.size() == 4);
  CHECK(page2.front().id == "t15");
  auto b = s.list(TaskFilter{.cls = "b", .limit = 100}).value();
  CHECK(b.size() == 15);
  auto un = s.unfinished().value();
  CHECK(un.size() == 20);
  CHECK(std::is_sorted(un.begin(), un.end(), [](const auto& x, const auto& y) { return x.seq < y.seq; }));
  CHECK(s.health() == "ok");
}

TEST_CASE("sqlite store: a database from a newer schema is refused", "[orchestrator][store]") {
  const auto dir = dspy::test::tempDir();
  { REQUIRE(SqliteTaskStore::open(dir, SyncMode::Normal).ok()); }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((dir + "/orchestrator.db").c_str(), &db) == SQLITE_OK);
  sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto again = SqliteTaskStore::open(dir, SyncMode::Normal);
  REQUIRE_FALSE(again.ok());
  CHECK_THAT(again.error(), Catch::Contains("schema version 99"));
  CHECK_FALSE(SqliteTaskStore::open("/proc/nope/x", SyncMode::Normal).ok());
}

TEST_CASE("sqlite store: a new database gets the migrations' tables and version, nothing more", "[orchestrator][store]") {
  const auto dir = dspy::test::tempDir();
  { REQUIRE(SqliteTaskStore::open(dir, SyncMode::Normal).ok()); }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((dir + "/orchestrator.db").c_str(), &db) == SQLITE_OK);
  std::vector<std::string> tables;
  sqlite3_exec(
      db, "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name",
      [](void* out, int, char** values, char**) {
        static_cast<std::vector<std::string>*>(out)->push_back(values[0]);
        return 0;
      },
      &tables, nullptr);
  int version = 0;
  sqlite3_exec(
      db, "PRAGMA user_version",
      [](void* out, int, char** values, char**) {
        *static_cast<int*>(out) = std::atoi(values[0]);
        return 0;
      },
      &version, nullptr);
  sqlite3_close(db);
  CHECK(tables == std::vector<std::string>{"meta", "tasks"});
  CHECK(version == SqliteTaskStore::kSchemaVersion);
}

TEST_CASE("sqlite store: missing parent directories are created, the state directory is private",
          "[orchestrator][store]") {
  const auto base = dspy::test::tempDir();
  const std::string dir = base + "/var/lib/dspy-agent/orchestrator";
  auto store = SqliteTaskStore::open(dir, SyncMode::Normal);
  REQUIRE(store.ok());
  struct stat leaf {}, parent {};
  REQUIRE(::stat(dir.c_str(), &leaf) == 0);
  REQUIRE(::stat((base + "/var/lib/dspy-agent").c_str(), &parent) == 0);
  CHECK((leaf.st_mode & 0777) == 0750);
  CHECK((parent.st_mode & 0777) == 0755);
}

TEST_CASE("sqlite store: a state directory that cannot be made is named in the error", "[orchestrator][store]") {
  const auto base = dspy::test::tempDir();
  { std::ofstream(base + "/file") << "x"; }
  auto store = SqliteTaskStore::open(base + "/file/state", SyncMode::Normal);
  REQUIRE_FALSE(store.ok());
  CHECK_THAT(store.error(), Catch::Contains(base + "/file/state") && Catch::Contains("Not a directory"));
}
