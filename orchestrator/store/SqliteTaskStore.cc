// SQLite task store with group commit.
#include "orchestrator/store/SqliteTaskStore.h"
#include "orchestrator/store/SqliteCommon.h"
#include "orchestrator/store/StoreBackup.h"

#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <future>
#include <iterator>
#include <cstring>
#include <unordered_map>
#include <nlohmann/json.hpp>

namespace dspy::orchestrator {
namespace {

// Version 1. Tables beyond `tasks` are filled by the workflow engine, the Slurm
// integration and the event relay; they are created now so that those parts extend
// the schema instead of rewriting it.
// The schema as a list of migrations: a database at user_version N gets every migration
// above N, each in one transaction with its version. Later parts (workflows, Slurm jobs,
// the event outbox) add theirs here. Databases created before this list existed are at
// version 1 and may hold empty draft tables named workflows, workflow_versions,
// workflow_runs, slurm_jobs and outbox that nothing used: a migration that creates one of
// those names drops the draft first.
struct Migration {
  int version;
  const char* sql;
};
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  class TEXT NOT NULL,
  priority INTEGER NOT NULL DEFAULT 0,
  workflow_id TEXT NOT NULL DEFAULT '',
  payload TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  result TEXT NOT NULL DEFAULT '{}',
  error TEXT NOT NULL DEFAULT '',
  submitted_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  not_before_ms INTEGER NOT NULL DEFAULT 0);
)sql"},
    // Workflows (every version kept), their runs and steps; a task's own retry policy.
    // Version-1 databases of the first builds may hold empty draft tables of the same
    // names that nothing used: they go first.
    {2, R"sql(
DROP TABLE IF EXISTS workflows;
DROP TABLE IF EXISTS workflow_versions;
DROP TABLE IF EXISTS workflow_runs;
CREATE TABLE workflows (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL);
CREATE TABLE workflow_versions (
  workflow_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  document TEXT NOT NULL,
  PRIMARY KEY (workflow_id, version));
CREATE TABLE workflow_runs (
  id TEXT PRIMARY KEY,
  workflow_id TEXT NOT NULL,
  workflow_version INTEGER NOT NULL,
  idempotency_key TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL,
  input TEXT NOT NULL DEFAULT '{}',
  error TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX workflow_runs_idempotency ON workflow_runs (workflow_id, idempotency_key)
  WHERE idempotency_key != '';
CREATE INDEX workflow_runs_by_workflow ON workflow_runs (workflow_id, created_ms);
CREATE INDEX workflow_runs_unfinished ON workflow_runs (status) WHERE status IN ('pending', 'running');
CREATE TABLE workflow_steps (
  run_id TEXT NOT NULL,
  node_id TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  task_id TEXT NOT NULL DEFAULT '',
  started_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  result TEXT NOT NULL DEFAULT '{}',
  error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, node_id)) WITHOUT ROWID;
ALTER TABLE tasks ADD COLUMN retry TEXT NOT NULL DEFAULT '';
)sql"},
    // The event outbox: every event, written in the transaction of the change that
    // caused it; delivered_ms is NULL while it waits for the Kafka relay, -1 when no
    // relay was configured. event_resources keeps each resource's last sequence number
    // once its events are pruned.
    {3, R"sql(
DROP TABLE IF EXISTS outbox;
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL,
  type TEXT NOT NULL,
  resource_id TEXT NOT NULL,
  resource_seq INTEGER NOT NULL,
  ts_ns INTEGER NOT NULL,
  source TEXT NOT NULL,
  data TEXT NOT NULL,
  delivered_ms INTEGER);
CREATE INDEX outbox_pending ON outbox (seq) WHERE delivered_ms IS NULL;
CREATE INDEX outbox_resource ON outbox (resource_id, resource_seq);
CREATE TABLE event_resources (resource_id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;
)sql"},
    // Slurm jobs, one row per (task, attempt); the first builds' draft table of that
    // name held nothing and goes.
    {4, R"sql(
DROP TABLE IF EXISTS slurm_jobs;
CREATE TABLE slurm_jobs (
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  job_id TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL,
  terminal INTEGER NOT NULL DEFAULT 0,
  reason TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  exit_code INTEGER NOT NULL DEFAULT -1,
  exit_signal INTEGER NOT NULL DEFAULT 0,
  submit_ms INTEGER NOT NULL DEFAULT 0,
  start_ms INTEGER NOT NULL DEFAULT 0,
  end_ms INTEGER NOT NULL DEFAULT 0,
  updated_ms INTEGER NOT NULL DEFAULT 0,
  template TEXT NOT NULL DEFAULT '',
  script_path TEXT NOT NULL DEFAULT '',
  output_path TEXT NOT NULL DEFAULT '',
  marker TEXT NOT NULL DEFAULT '',
  nodes TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (task_id, attempt)) WITHOUT ROWID;
)sql"},
    // The backlog lives in the store: each task names the queue it waits in, and pending
    // tasks are indexed in dispatch order per queue; running tasks are found at restart
    // without reading the whole table.
    {5, R"sql(
ALTER TABLE tasks ADD COLUMN queue TEXT NOT NULL DEFAULT '';
UPDATE tasks SET queue = class WHERE status = 'pending';
CREATE INDEX tasks_backlog ON tasks (queue, priority DESC, seq, class) WHERE status = 'pending';
CREATE INDEX tasks_running ON tasks (seq) WHERE status = 'running';
)sql"},
    // A task's last event number lives in its row (written anyway with each of its
    // events), so task events no longer enter an index keyed by resource: each entry
    // landed on a random page of it (ids are random), one more page per task and commit.
    // Events of other resources, and a task's non-task events (slurm_job_*), keep it.
    {6, R"sql(
ALTER TABLE tasks ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;
UPDATE tasks SET event_seq = (SELECT MAX(resource_seq) FROM outbox WHERE resource_id = tasks.id AND type GLOB 'task_*')
  WHERE id IN (SELECT resource_id FROM outbox WHERE type GLOB 'task_*');
DROP INDEX outbox_resource;
CREATE INDEX outbox_resource ON outbox (resource_id, resource_seq) WHERE type NOT GLOB 'task_*';
)sql"},
};
static_assert(kMigrations[std::size(kMigrations) - 1].version == SqliteTaskStore::kSchemaVersion,
              "kSchemaVersion is the last migration's version");

constexpr const char* kColumns =
    "seq, id, class, priority, workflow_id, payload, request_hash, status, attempts, result, error, "
    "submitted_ms, started_ms, finished_ms, not_before_ms, retry, queue";

using sqlite::dump;
using sqlite::exec;
using sqlite::load;
using sqlite::Stmt;
using sqlite::text;

TaskRecord readRow(sqlite3_stmt* st) {
  TaskRecord t;
  t.seq = sqlite3_column_int64(st, 0);
  t.id = text(st, 1);
  t.cls = text(st, 2);
  t.priority = sqlite3_column_int(st, 3);
  t.workflow_id = text(st, 4);
  t.payload = load(sqlite3_column_text(st, 5));
  t.request_hash = text(st, 6);
  t.status = parseTaskStatus(text(st, 7)).value_or(TaskStatus::Failed);
  t.attempts = sqlite3_column_int(st, 8);
  t.result = load(sqlite3_column_text(st, 9));
  t.error = text(st, 10);
  t.submitted_ms = sqlite3_column_int64(st, 11);
  t.started_ms = sqlite3_column_int64(st, 12);
  t.finished_ms = sqlite3_column_int64(st, 13);
  t.not_before_ms = sqlite3_column_int64(st, 14);
  t.retry = retryFromText(text(st, 15));
  t.queue = text(st, 16);
  return t;
}


Result<sqlite3*> openDb(const std::string& path, SyncMode mode) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string m = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return Error{"cannot open the task store " + path + ": " + m, ErrorKind::Unavailable};
  }
  sqlite3_busy_timeout(db, 5000);
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON"}) {
    if (Status s = exec(db, pragma); !s.ok()) {
      sqlite3_close_v2(db);
      return Error{"task store " + path + ": " + s.error(), ErrorKind::Unavailable};
    }
  }
  (void)exec(db, mode == SyncMode::Full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  return db;
}

// Creates `dir` and any missing parents: parents world-readable like /var/lib itself,
// the state directory itself private to the daemon's user and group.
Status makeStateDir(const std::string& dir) {
  std::string prefix;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    prefix = dir.substr(0, pos);
    if (prefix.empty()) continue;
    const mode_t mode = pos == std::string::npos ? 0750 : 0755;
    if (::mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) {
      return Error{"cannot create the state directory " + dir + " (at " + prefix + ": " + std::strerror(errno) + ")",
                   ErrorKind::Unavailable};
    }
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error{"the state directory " + dir + " is not a directory", ErrorKind::Unavailable};
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return Error{"the state directory " + dir + " is not writable: " + std::strerror(errno), ErrorKind::Unavailable};
  }
  return Status::Ok();
}

}  // namespace

Result<int> lockStoreDir(const std::string& dir) {
  const std::string lock = dir + "/orchestrator.lock";
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return Error{"cannot open " + lock + ": " + std::strerror(errno), ErrorKind::FailedPrecondition};
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Error{"another orchestrator is using " + dir + " (it holds " + lock + "); stop it first",
                   ErrorKind::FailedPrecondition};
    }
    return Error{"cannot lock " + lock + ": " + std::strerror(err), ErrorKind::FailedPrecondition};
  }
  return fd;
}

Result<std::unique_ptr<SqliteTaskStore>> SqliteTaskStore::open(const std::string& dir, SyncMode mode, int max_batch) {
  if (Status s = makeStateDir(dir); !s.ok()) return s.fullError();
  // One process per store: two writers would each believe their group commits alone.
  auto lock = lockStoreDir(dir);
  if (!lock) return lock.fullError();
  struct Unlock {
    int fd;
    ~Unlock() {
      if (fd >= 0) ::close(fd);
    }
  } unlock{lock.value()};
  const std::string path = dir + "/orchestrator.db";
  auto w = openDb(path, mode);
  if (!w) return w.fullError();
  sqlite3* writer = w.value();
  int current = 0;
  {
    // Finalized before the migrations: an open statement would lock the tables they drop.
    Stmt version(writer, "PRAGMA user_version");
    current = sqlite3_step(version.st) == SQLITE_ROW ? sqlite3_column_int(version.st, 0) : 0;
  }
  if (current > kSchemaVersion) {
    sqlite3_close_v2(writer);
    return Error{path + " has schema version " + std::to_string(current) + ", newer than this build's " +
                     std::to_string(kSchemaVersion) + ": upgrade the orchestrator",
                 ErrorKind::FailedPrecondition};
  }
  if (current >= 1 && current < kSchemaVersion) {
    // An older orchestrator refuses a migrated store: keep the way back (dspy-agent
    // restore of this copy, with the older release).
    const std::string copy = path + ".before-schema-" + std::to_string(current);
    auto kept = backupStore(dir, copy);
    if (!kept) {
      sqlite3_close_v2(writer);
      return Error{path + ": not migrating schema " + std::to_string(current) + " to " +
                       std::to_string(kSchemaVersion) + " without a copy of it first: " + kept.error(),
                   ErrorKind::FailedPrecondition};
    }
    spdlog::info("store {}: migrating schema {} to {}; the store as it was is kept in {}", path, current,
                 kSchemaVersion, copy);
  }
  for (const auto& m : kMigrations) {
    if (m.version <= current) continue;
    if (Status s = exec(writer, std::string("BEGIN;") + m.sql + "PRAGMA user_version=" + std::to_string(m.version) +
                                    ";COMMIT;");
        !s.ok()) {
      (void)exec(writer, "ROLLBACK;");
      sqlite3_close_v2(writer);
      return Error{path + ": schema migration to version " + std::to_string(m.version) + " failed: " + s.error(),
                   ErrorKind::Internal};
    }
  }
  auto r = openDb(path, mode);
  if (!r) {
    sqlite3_close_v2(writer);
    return r.fullError();
  }
  auto c = openDb(path, mode);
  if (!c) {
    sqlite3_close_v2(r.value());
    sqlite3_close_v2(writer);
    return c.fullError();
  }
  auto store = std::unique_ptr<SqliteTaskStore>(new SqliteTaskStore(path, writer, r.value(), c.value(), max_batch));
  store->lock_fd_ = unlock.fd;
  unlock.fd = -1;
  return store;
}

struct SqliteTaskStore::Statements {
  Stmt ins;
  Stmt upd;
  Stmt event;
  explicit Statements(sqlite3* db)
      : ins(db, std::string("INSERT INTO tasks (") + kColumns +
                    ", event_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"),
        upd(db,
            "UPDATE tasks SET status=?, attempts=?, result=?, error=?, started_ms=?, finished_ms=?, "
            "not_before_ms=?, event_seq=? WHERE id=?"),
        event(db,
              "INSERT INTO outbox (seq, event_id, type, resource_id, resource_seq, ts_ns, source, data, delivered_ms) "
              "VALUES (?,?,?,?,?,?,?,?,?)"),
        lookup(db,
               "SELECT MAX(m) FROM (SELECT event_seq AS m FROM tasks WHERE id=?1 "
               "UNION ALL SELECT MAX(resource_seq) FROM outbox WHERE resource_id=?1 AND type NOT GLOB 'task_*' "
               "UNION ALL SELECT last_seq FROM event_resources WHERE resource_id=?1)"),
        sync_task(db, "UPDATE tasks SET event_seq=?2 WHERE id=?1 AND event_seq < ?2"),
        sync_other(db,
                   "INSERT INTO event_resources (resource_id, last_seq) VALUES (?1, ?2) "
                   "ON CONFLICT(resource_id) DO UPDATE SET last_seq=MAX(last_seq, excluded.last_seq)") {}
  Stmt lookup;
  Stmt sync_task;
  Stmt sync_other;
};

SqliteTaskStore::SqliteTaskStore(std::string path, sqlite3* writer, sqlite3* reader, sqlite3* checkpointer,
                                 int max_batch)
    : path_(std::move(path)),
      writer_(writer),
      reader_(reader),
      checkpoint_db_(checkpointer),
      statements_(std::make_unique<Statements>(writer)) {
  // Checkpoints off the writer thread: SQLite would run each one inside the commit that
  // crossed the threshold (copying the WAL into the database and syncing it), stalling
  // every write queued behind it. The hook (it replaces SQLite's auto-checkpoint) only
  // wakes the checkpoint thread, which runs PASSIVE checkpoints that never block writers.
  sqlite3_wal_hook(
      writer_,
      [](void* self, sqlite3* db, const char* name, int pages) {
        auto* store = static_cast<SqliteTaskStore*>(self);
        if (pages >= kInlineCheckpointPages) {
          // As SQLite's own auto-checkpoint does from this hook: nothing commits while
          // it runs, so unless a reader still needs older frames the next write starts
          // the WAL over.
          int log = 0, done = 0;
          (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
          store->wal_pages_ = 0;
          return SQLITE_OK;
        }
        store->wal_pages_ = pages;
        if (pages >= kCheckpointPages) store->checkpoint_cv_.notify_one();
        return SQLITE_OK;
      },
      this);
  checkpointer_ = std::jthread([this](std::stop_token stop) {
    std::mutex mu;
    while (!stop.stop_requested()) {
      {
        std::unique_lock lock(mu);
        checkpoint_cv_.wait_for(lock, stop, std::chrono::seconds(1), [this] { return wal_pages_ >= kCheckpointPages; });
      }
      if (stop.stop_requested()) return;
      if (wal_pages_ == 0) continue;
      wal_pages_ = 0;
      int log = 0, done = 0;
      if (sqlite3_wal_checkpoint_v2(checkpoint_db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done) != SQLITE_OK) {
        spdlog::debug("task store checkpoint: {}", sqlite3_errmsg(checkpoint_db_));
      }
    }
  });
  std::int64_t last_seq = 0, last_ts = 0, pending = 0;
  {
    Stmt q(writer_, "SELECT seq, ts_ns FROM outbox ORDER BY seq DESC LIMIT 1");
    if (sqlite3_step(q.st) == SQLITE_ROW) {
      last_seq = sqlite3_column_int64(q.st, 0);
      last_ts = sqlite3_column_int64(q.st, 1);
    }
    Stmt c(writer_, "SELECT COUNT(*) FROM outbox WHERE delivered_ms IS NULL");
    if (sqlite3_step(c.st) == SQLITE_ROW) pending = sqlite3_column_int64(c.st, 0);
  }
  pending_ = pending;
  last_seq_ = last_seq;
  stamper_ = std::make_unique<EventStamper>(last_seq, last_ts, [this](const std::string& resource) -> std::int64_t {
    sqlite3_stmt* st = statements_->lookup.st;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, resource.c_str(), -1, SQLITE_TRANSIENT);
    const std::int64_t last = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    // A SELECT left on its row keeps the writer's read snapshot open: the WAL could then
    // never start over after a checkpoint and would grow without bound (found by the soak).
    sqlite3_reset(st);
    return last;
  });
  writes_ = std::make_unique<WriteQueue>(
      [this](std::vector<WriteQueue::Write>& batch, std::vector<Status>& outcomes) { commit(batch, outcomes); },
      max_batch);
}

SqliteTaskStore::~SqliteTaskStore() {
  writes_.reset();  // commits what is queued
  checkpointer_.request_stop();
  checkpoint_cv_.notify_all();
  if (checkpointer_.joinable()) checkpointer_.join();
  sqlite3_close_v2(checkpoint_db_);
  statements_.reset();
  sqlite3_close_v2(reader_);
  sqlite3_close_v2(writer_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the store's lock
}

void SqliteTaskStore::insert(const TaskRecord& task, Done done) {
  WriteQueue::Write w{true, task, std::move(done), nullptr, insertEvents(task)};
  WriteQueue::prepare(w);  // on the caller's thread, not the writer's
  writes_->push(std::move(w));
}

void SqliteTaskStore::insertMany(std::vector<TaskRecord> tasks, ManyDone done) {
  writes_->pushInserts(std::move(tasks), std::move(done));
}

void SqliteTaskStore::update(const TaskRecord& task, Done done) {
  writes_->push({false, task, std::move(done), nullptr, {taskEvent(task, false)}});
}

void SqliteTaskStore::flush() { writes_->flush(); }

void SqliteTaskStore::writeOp(std::function<Status(sqlite3*)> op, Done done, std::vector<Event> events) {
  WriteQueue::Write w;
  w.apply = [op = std::move(op), db = writer_] { return op(db); };
  w.done = std::move(done);
  w.events = std::move(events);
  writes_->push(std::move(w));
}

Status SqliteTaskStore::read(const std::function<Status(sqlite3*)>& fn) {
  std::lock_guard lock(read_mu_);
  return fn(reader_);
}

void SqliteTaskStore::commit(std::vector<WriteQueue::Write>& batch, std::vector<Status>& outcomes) {
  Stmt& ins = statements_->ins;
  Stmt& upd = statements_->upd;
  // An update writes a task's whole mutable state, so only the last update of a task
  // in this batch needs writing (a fast task's "running" and "completed" often meet
  // in one batch).
  std::unordered_map<std::string, std::size_t> latest;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!batch[i].is_insert && !batch[i].apply) latest[batch[i].task.id] = i;
  }
  Status tx = exec(writer_, "BEGIN IMMEDIATE");
  for (std::size_t i = 0; tx.ok() && i < batch.size(); ++i) {
    if (batch[i].apply) {
      outcomes[i] = batch[i].apply();
      if (outcomes[i].ok()) tx = storeEvents(batch[i].events);
      continue;
    }
    const TaskRecord& t = batch[i].task;
    if (!batch[i].is_insert && latest[t.id] != i) {
      tx = storeEvents(batch[i].events);  // the row is written by a later update; its event is not
      continue;
    }
    sqlite3_stmt* st = batch[i].is_insert ? ins.st : upd.st;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    // Text the batch owns is bound without a copy (SQLITE_STATIC): it outlives the step.
    if (batch[i].is_insert && batch[i].payload_json.empty()) batch[i].payload_json = dump(t.payload);
    const std::string& payload = batch[i].payload_json;
    const std::string result = batch[i].is_insert && t.result.empty() ? std::string("{}") : dump(t.result);
    const char* status = toString(t.status);
    // The row carries the number its task's last event will have once this write's
    // events are stored (they are stamped after the row, and only if it is written).
    std::int64_t own_events = 0;
    for (const auto& e : batch[i].events) own_events += isTaskEvent(e) && e.resource_id == t.id ? 1 : 0;
    const std::int64_t event_seq = (batch[i].is_insert ? 0 : stamper_->last(t.id)) + own_events;
    if (batch[i].is_insert) {
      sqlite3_bind_int64(st, 1, t.seq);
      sqlite3_bind_text(st, 2, t.id.c_str(), static_cast<int>(t.id.size()), SQLITE_STATIC);
      sqlite3_bind_text(st, 3, t.cls.c_str(), static_cast<int>(t.cls.size()), SQLITE_STATIC);
      sqlite3_bind_int(st, 4, t.priority);
      sqlite3_bind_text(st, 5, t.workflow_id.c_str(), static_cast<int>(t.workflow_id.size()), SQLITE_STATIC);
      sqlite3_bind_text(st, 6, payload.c_str(), static_cast<int>(payload.size()), SQLITE_STATIC);
      sqlite3_bind_text(st, 7, t.request_hash.c_str(), static_cast<int>(t.request_hash.size()), SQLITE_STATIC);
      sqlite3_bind_text(st, 8, status, -1, SQLITE_STATIC);
      sqlite3_bind_int(st, 9, t.attempts);
      sqlite3_bind_text(st, 10, result.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 11, t.error.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(st, 12, t.submitted_ms);
      sqlite3_bind_int64(st, 13, t.started_ms);
      sqlite3_bind_int64(st, 14, t.finished_ms);
      sqlite3_bind_int64(st, 15, t.not_before_ms);
      sqlite3_bind_text(st, 16, retryToText(t.retry).c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 17, t.queue.c_str(), static_cast<int>(t.queue.size()), SQLITE_STATIC);
      sqlite3_bind_int64(st, 18, event_seq);
    } else {
      sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
      sqlite3_bind_int(st, 2, t.attempts);
      sqlite3_bind_text(st, 3, result.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 4, t.error.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(st, 5, t.started_ms);
      sqlite3_bind_int64(st, 6, t.finished_ms);
      sqlite3_bind_int64(st, 7, t.not_before_ms);
      sqlite3_bind_int64(st, 8, event_seq);
      sqlite3_bind_text(st, 9, t.id.c_str(), -1, SQLITE_TRANSIENT);
    }
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT) {
      outcomes[i] = Error{"task id '" + t.id + "' exists", ErrorKind::AlreadyExists};
    } else if (rc != SQLITE_DONE) {
      outcomes[i] = Error{std::string("sqlite: ") + sqlite3_errmsg(writer_), ErrorKind::Internal};
    } else if (!batch[i].is_insert && sqlite3_changes(writer_) == 0) {
      outcomes[i] = Error{"task '" + t.id + "' not found", ErrorKind::NotFound};
    }
    if (outcomes[i].ok()) {
      tx = storeEvents(batch[i].events);
      if (auto it = unsynced_task_seqs_.find(t.id); it != unsynced_task_seqs_.end() && it->second == event_seq) {
        unsynced_task_seqs_.erase(it);  // the row just written holds it
      }
    }
  }
  if (tx.ok()) tx = syncTaskSeqs();
  if (tx.ok()) tx = exec(writer_, "COMMIT");
  if (tx.ok()) {
    stamper_->commit();
    pending_ += uncommitted_pending_;
    last_seq_ = stamper_->lastSeq();
  } else {
    stamper_->rollback();
    spdlog::error("task store commit of {} writes failed: {}", batch.size(), tx.error());
    for (auto& o : outcomes) o = Error{"task store: " + tx.error(), ErrorKind::Unavailable};
  }
  uncommitted_pending_ = 0;
  unsynced_task_seqs_.clear();
  std::lock_guard lock(error_mu_);
  last_error_ = tx.ok() ? "" : tx.error();
}

Status SqliteTaskStore::storeEvents(std::vector<Event>& events) {
  sqlite3_stmt* st = statements_->event.st;
  for (auto& e : events) {
    stamper_->stamp(e, std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count());
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, e.seq);
    sqlite3_bind_text(st, 2, e.id.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, e.type.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, e.resource_id.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, e.resource_seq);
    sqlite3_bind_int64(st, 6, e.ts_ns);
    sqlite3_bind_text(st, 7, e.source.c_str(), -1, SQLITE_STATIC);
    if (e.data_json.empty()) e.data_json = dump(e.data);
    sqlite3_bind_text(st, 8, e.data_json.c_str(), -1, SQLITE_STATIC);
    if (relayed_) {
      sqlite3_bind_null(st, 9);
      ++uncommitted_pending_;
    } else {
      sqlite3_bind_int64(st, 9, -1);
    }
    if (sqlite3_step(st) != SQLITE_DONE) {
      return Error{std::string("sqlite: outbox: ") + sqlite3_errmsg(writer_), ErrorKind::Internal};
    }
    if (isTaskEvent(e)) unsynced_task_seqs_[e.resource_id] = e.resource_seq;
  }
  return Status::Ok();
}

// A task event stored without its row being written with its number (none of ours
// today; kept so that numbering stays right whatever writes one): the row gets it, or
// with no such row, event_resources does.
Status SqliteTaskStore::syncTaskSeqs() {
  for (const auto& [id, seq] : unsynced_task_seqs_) {
    for (sqlite3_stmt* st : {statements_->sync_task.st, statements_->sync_other.st}) {
      sqlite3_reset(st);
      sqlite3_bind_text(st, 1, id.c_str(), static_cast<int>(id.size()), SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, seq);
      if (sqlite3_step(st) != SQLITE_DONE) {
        return Error{std::string("sqlite: event numbers: ") + sqlite3_errmsg(writer_), ErrorKind::Internal};
      }
      const bool row_has_it = st == statements_->sync_task.st && sqlite3_changes(writer_) > 0;
      sqlite3_reset(st);
      if (row_has_it) break;
    }
  }
  return Status::Ok();
}

Result<std::vector<TaskRecord>> SqliteTaskStore::query(const std::string& sql, const std::function<void(void*)>& bind) {
  std::lock_guard lock(read_mu_);
  Stmt st(reader_, sql);
  if (st.st == nullptr) return Error{std::string("sqlite: ") + sqlite3_errmsg(reader_), ErrorKind::Internal};
  if (bind) bind(st.st);
  std::vector<TaskRecord> out;
  int rc;
  while ((rc = sqlite3_step(st.st)) == SQLITE_ROW) out.push_back(readRow(st.st));
  if (rc != SQLITE_DONE) return Error{std::string("sqlite: ") + sqlite3_errmsg(reader_), ErrorKind::Unavailable};
  return out;
}

Result<std::optional<TaskRecord>> SqliteTaskStore::get(const std::string& id) {
  auto rows = query(std::string("SELECT ") + kColumns + " FROM tasks WHERE id=?", [&](void* st) {
    sqlite3_bind_text(static_cast<sqlite3_stmt*>(st), 1, id.c_str(), -1, SQLITE_TRANSIENT);
  });
  if (!rows) return rows.fullError();
  if (rows.value().empty()) return std::optional<TaskRecord>{};
  return std::optional<TaskRecord>{std::move(rows.value().front())};
}

Result<std::vector<TaskRecord>> SqliteTaskStore::unfinished() {
  return query(std::string("SELECT ") + kColumns + " FROM tasks WHERE status IN ('pending','running') ORDER BY seq",
               nullptr);
}

Result<std::vector<TaskRecord>> SqliteTaskStore::queued(const std::string& queue, std::optional<QueuePos> from,
                                                       int limit) {
  // Dispatch order is (priority descending, seq ascending); "at or after `from`" is a
  // lower priority, or the same priority and a seq not smaller. The partial index
  // tasks_backlog serves both the condition and the order.
  std::string sql = std::string("SELECT ") + kColumns + " FROM tasks WHERE status = 'pending' AND queue = ?1";
  if (from) sql += " AND (priority < ?2 OR (priority = ?2 AND seq >= ?3))";
  sql += " ORDER BY priority DESC, seq LIMIT ?4";
  return query(sql, [&](void* p) {
    auto* st = static_cast<sqlite3_stmt*>(p);
    sqlite3_bind_text(st, 1, queue.c_str(), -1, SQLITE_TRANSIENT);
    if (from) {
      sqlite3_bind_int(st, 2, from->priority);
      sqlite3_bind_int64(st, 3, from->seq);
    }
    sqlite3_bind_int(st, 4, limit);
  });
}

Result<std::vector<TaskStore::PendingGroup>> SqliteTaskStore::pendingGroups() {
  std::lock_guard lock(read_mu_);
  Stmt st(reader_, "SELECT class, queue, COUNT(*) FROM tasks WHERE status = 'pending' GROUP BY class, queue");
  std::vector<PendingGroup> out;
  int rc;
  while ((rc = sqlite3_step(st.st)) == SQLITE_ROW) {
    out.push_back(PendingGroup{text(st.st, 0), text(st.st, 1), sqlite3_column_int64(st.st, 2)});
  }
  if (rc != SQLITE_DONE) return Error{std::string("sqlite: ") + sqlite3_errmsg(reader_), ErrorKind::Unavailable};
  return out;
}

Result<std::vector<TaskRecord>> SqliteTaskStore::withStatus(TaskStatus status) {
  return query(std::string("SELECT ") + kColumns + " FROM tasks WHERE status = ?1 ORDER BY seq", [&](void* p) {
    sqlite3_bind_text(static_cast<sqlite3_stmt*>(p), 1, toString(status), -1, SQLITE_STATIC);
  });
}

Status SqliteTaskStore::moveQueue(const std::string& cls, const std::string& from, const std::string& to) {
  std::promise<Status> result;
  auto done = result.get_future();
  writeOp(
      [cls, from, to](sqlite3* db) -> Status {
        Stmt st(db, "UPDATE tasks SET queue = ?3 WHERE status = 'pending' AND class = ?1 AND queue = ?2");
        sqlite3_bind_text(st.st, 1, cls.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st.st, 2, from.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st.st, 3, to.c_str(), -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st.st) != SQLITE_DONE) return Error{std::string("sqlite: ") + sqlite3_errmsg(db)};
        return Status::Ok();
      },
      [&result](Status s) { result.set_value(std::move(s)); });
  return done.get();
}

Result<std::vector<TaskRecord>> SqliteTaskStore::list(const TaskFilter& f) {
  std::string sql = std::string("SELECT ") + kColumns + " FROM tasks WHERE seq > ?1";
  if (f.status) sql += " AND status = ?2";
  if (!f.cls.empty()) sql += " AND class = ?3";
  if (!f.workflow_id.empty()) sql += " AND workflow_id = ?4";
  sql += " ORDER BY seq LIMIT ?5";
  return query(sql, [&](void* p) {
    auto* st = static_cast<sqlite3_stmt*>(p);
    sqlite3_bind_int64(st, 1, f.after_seq);
    if (f.status) sqlite3_bind_text(st, 2, toString(*f.status), -1, SQLITE_STATIC);
    if (!f.cls.empty()) sqlite3_bind_text(st, 3, f.cls.c_str(), -1, SQLITE_TRANSIENT);
    if (!f.workflow_id.empty()) sqlite3_bind_text(st, 4, f.workflow_id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 5, f.limit);
  });
}

Result<std::map<TaskStatus, std::int64_t>> SqliteTaskStore::countByStatus() {
  std::lock_guard lock(read_mu_);
  Stmt st(reader_, "SELECT status, COUNT(*) FROM tasks GROUP BY status");
  std::map<TaskStatus, std::int64_t> out;
  int rc;
  while ((rc = sqlite3_step(st.st)) == SQLITE_ROW) {
    if (auto s = parseTaskStatus(text(st.st, 0))) out[*s] = sqlite3_column_int64(st.st, 1);
  }
  if (rc != SQLITE_DONE) return Error{std::string("sqlite: ") + sqlite3_errmsg(reader_), ErrorKind::Unavailable};
  return out;
}

std::function<TaskStore::Counts()> SqliteTaskStore::countByStatusLater() {
  // A connection of its own holds a read transaction whose snapshot is taken here (by a
  // first read); the count over the whole table runs later inside it and sees the table
  // as it was now, whatever is written meanwhile.
  sqlite3* db = nullptr;
  auto fail = [&](const std::string& what) -> std::function<Counts()> {
    Error err{"sqlite: " + what + ": " + (db ? sqlite3_errmsg(db) : "cannot open"), ErrorKind::Unavailable};
    if (db) sqlite3_close_v2(db);
    return [err] { return Counts(err); };
  };
  auto opened = openDb(path_, SyncMode::Normal);
  if (!opened) return [err = opened.fullError()] { return Counts(err); };
  db = opened.value();
  if (!exec(db, "BEGIN").ok()) return fail("begin");
  {
    Stmt first(db, "SELECT seq FROM tasks LIMIT 1");
    const int rc = sqlite3_step(first.st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fail("snapshot");
  }
  auto conn = std::shared_ptr<sqlite3>(db, [](sqlite3* d) { sqlite3_close_v2(d); });
  return [conn]() -> Counts {
    std::map<TaskStatus, std::int64_t> out;
    {
      Stmt st(conn.get(), "SELECT status, COUNT(*) FROM tasks GROUP BY status");
      int rc;
      while ((rc = sqlite3_step(st.st)) == SQLITE_ROW) {
        if (auto s = parseTaskStatus(text(st.st, 0))) out[*s] = sqlite3_column_int64(st.st, 1);
      }
      if (rc != SQLITE_DONE) return Error{std::string("sqlite: ") + sqlite3_errmsg(conn.get()), ErrorKind::Unavailable};
    }
    (void)exec(conn.get(), "COMMIT");
    return out;
  };
}

Result<std::int64_t> SqliteTaskStore::maxSeq() {
  std::lock_guard lock(read_mu_);
  Stmt st(reader_, "SELECT COALESCE(MAX(seq), 0) FROM tasks");
  if (sqlite3_step(st.st) != SQLITE_ROW) return Error{std::string("sqlite: ") + sqlite3_errmsg(reader_)};
  return static_cast<std::int64_t>(sqlite3_column_int64(st.st, 0));
}

std::string SqliteTaskStore::health() {
  std::lock_guard lock(error_mu_);
  return last_error_.empty() ? "ok" : "failing: " + last_error_;
}

}  // namespace dspy::orchestrator
