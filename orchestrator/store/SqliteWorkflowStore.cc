// The SQLite store's workflow part: workflows and their versions, runs, steps. Writes go
// through the same write queue (and so the same group commits) as the tasks'.
#include <sqlite3.h>

#include "orchestrator/store/SqliteCommon.h"
#include "orchestrator/store/SqliteTaskStore.h"

namespace dspy::orchestrator {
namespace {

constexpr const char* kRunColumns =
    "id, workflow_id, workflow_version, idempotency_key, status, input, error, created_ms, updated_ms, finished_ms";

RunRecord readRun(sqlite3_stmt* st) {
  RunRecord r;
  r.id = sqlite::text(st, 0);
  r.workflow_id = sqlite::text(st, 1);
  r.workflow_version = sqlite3_column_int(st, 2);
  r.idempotency_key = sqlite::text(st, 3);
  r.status = parseRunStatus(sqlite::text(st, 4)).value_or(RunStatus::Failed);
  r.input = sqlite::load(sqlite3_column_text(st, 5));
  r.error = sqlite::text(st, 6);
  r.created_ms = sqlite3_column_int64(st, 7);
  r.updated_ms = sqlite3_column_int64(st, 8);
  r.finished_ms = sqlite3_column_int64(st, 9);
  return r;
}

Status stepError(sqlite3* db) { return Error{std::string("sqlite: ") + sqlite3_errmsg(db), ErrorKind::Internal}; }

void bindText(sqlite3_stmt* st, int i, const std::string& s) { sqlite3_bind_text(st, i, s.c_str(), -1, SQLITE_TRANSIENT); }

}  // namespace

void SqliteTaskStore::putWorkflow(const WorkflowRecord& w, Done done) {
  writeOp(
      [w](sqlite3* db) -> Status {
        sqlite::Stmt v(db, "INSERT INTO workflow_versions (workflow_id, version, updated_ms, document) VALUES (?,?,?,?)");
        bindText(v.st, 1, w.id);
        sqlite3_bind_int(v.st, 2, w.version);
        sqlite3_bind_int64(v.st, 3, w.updated_ms);
        bindText(v.st, 4, w.document.dump());
        if (const int rc = sqlite3_step(v.st); rc == SQLITE_CONSTRAINT) {
          return Error{"workflow '" + w.id + "' version " + std::to_string(w.version) + " exists (a concurrent update)",
                       ErrorKind::AlreadyExists};
        } else if (rc != SQLITE_DONE) {
          return stepError(db);
        }
        sqlite::Stmt h(db,
                       "INSERT INTO workflows (id, name, version, created_ms, updated_ms) VALUES (?1,?2,?3,?4,?5) "
                       "ON CONFLICT(id) DO UPDATE SET name=?2, version=?3, updated_ms=?5");
        bindText(h.st, 1, w.id);
        bindText(h.st, 2, w.name);
        sqlite3_bind_int(h.st, 3, w.version);
        sqlite3_bind_int64(h.st, 4, w.created_ms);
        sqlite3_bind_int64(h.st, 5, w.updated_ms);
        return sqlite3_step(h.st) == SQLITE_DONE ? Status::Ok() : stepError(db);
      },
      std::move(done));
}

Result<std::vector<WorkflowRecord>> SqliteTaskStore::readWorkflows(const std::string& where, const std::string& id) {
  std::vector<WorkflowRecord> out;
  Status s = read([&](sqlite3* db) -> Status {
    sqlite::Stmt st(db, "SELECT w.id, w.name, v.version, w.created_ms, v.updated_ms, v.document FROM workflows w "
                        "JOIN workflow_versions v ON v.workflow_id = w.id " + where);
    if (!id.empty()) bindText(st.st, 1, id);
    int rc;
    while ((rc = sqlite3_step(st.st)) == SQLITE_ROW) {
      WorkflowRecord w;
      w.id = sqlite::text(st.st, 0);
      w.name = sqlite::text(st.st, 1);
      w.version = sqlite3_column_int(st.st, 2);
      w.created_ms = sqlite3_column_int64(st.st, 3);
      w.updated_ms = sqlite3_column_int64(st.st, 4);
      w.document = nlohmann::json::parse(sqlite::text(st.st, 5), nullptr, false);
      out.push_back(std::move(w));
    }
    return rc == SQLITE_DONE ? Status::Ok() : stepError(db);
  });
  if (!s.ok()) return s.fullError();
  return out;
}

Result<std::optional<WorkflowRecord>> SqliteTaskStore::getWorkflow(const std::string& id) {
  auto rows = readWorkflows("WHERE w.id = ?1 AND v.version = w.version", id);
  if (!rows) return rows.fullError();
  if (rows.value().empty()) return std::optional<WorkflowRecord>{};
  return std::optional<WorkflowRecord>{std::move(rows.value().front())};
}

Result<std::vector<WorkflowRecord>> SqliteTaskStore::listWorkflows() {
  return readWorkflows("WHERE v.version = w.version ORDER BY w.id", "");
}

Result<std::vector<WorkflowRecord>> SqliteTaskStore::workflowHistory(const std::string& id) {
  return readWorkflows("WHERE w.id = ?1 ORDER BY v.version DESC", id);
}

void SqliteTaskStore::insertRun(const RunRecord& run, std::vector<Event> events, Done done) {
  writeOp(
      [run](sqlite3* db) -> Status {
        sqlite::Stmt st(db, std::string("INSERT INTO workflow_runs (") + kRunColumns + ") VALUES (?,?,?,?,?,?,?,?,?,?)");
        bindText(st.st, 1, run.id);
        bindText(st.st, 2, run.workflow_id);
        sqlite3_bind_int(st.st, 3, run.workflow_version);
        bindText(st.st, 4, run.idempotency_key);
        sqlite3_bind_text(st.st, 5, toString(run.status), -1, SQLITE_STATIC);
        bindText(st.st, 6, sqlite::dump(run.input));
        bindText(st.st, 7, run.error);
        sqlite3_bind_int64(st.st, 8, run.created_ms);
        sqlite3_bind_int64(st.st, 9, run.updated_ms);
        sqlite3_bind_int64(st.st, 10, run.finished_ms);
        if (const int rc = sqlite3_step(st.st); rc == SQLITE_CONSTRAINT) {
          return Error{"a run of workflow '" + run.workflow_id + "' with idempotency key '" + run.idempotency_key +
                           "' exists",
                       ErrorKind::AlreadyExists};
        } else if (rc != SQLITE_DONE) {
          return stepError(db);
        }
        return Status::Ok();
      },
      std::move(done), std::move(events));
}

void SqliteTaskStore::updateRun(const RunRecord& run, std::vector<Event> events, Done done) {
  writeOp(
      [run](sqlite3* db) -> Status {
        sqlite::Stmt st(db, "UPDATE workflow_runs SET status=?, error=?, updated_ms=?, finished_ms=? WHERE id=?");
        sqlite3_bind_text(st.st, 1, toString(run.status), -1, SQLITE_STATIC);
        bindText(st.st, 2, run.error);
        sqlite3_bind_int64(st.st, 3, run.updated_ms);
        sqlite3_bind_int64(st.st, 4, run.finished_ms);
        bindText(st.st, 5, run.id);
        return sqlite3_step(st.st) == SQLITE_DONE ? Status::Ok() : stepError(db);
      },
      std::move(done), std::move(events));
}

void SqliteTaskStore::putStep(const StepRecord& step, std::vector<Event> events, Done done) {
  writeOp(
      [step](sqlite3* db) -> Status {
        sqlite::Stmt st(db,
                        "INSERT OR REPLACE INTO workflow_steps (run_id, node_id, status, attempts, task_id, started_ms, "
                        "finished_ms, result, error) VALUES (?,?,?,?,?,?,?,?,?)");
        bindText(st.st, 1, step.run_id);
        bindText(st.st, 2, step.node_id);
        sqlite3_bind_text(st.st, 3, toString(step.status), -1, SQLITE_STATIC);
        sqlite3_bind_int(st.st, 4, step.attempts);
        bindText(st.st, 5, step.task_id);
        sqlite3_bind_int64(st.st, 6, step.started_ms);
        sqlite3_bind_int64(st.st, 7, step.finished_ms);
        bindText(st.st, 8, sqlite::dump(step.result));
        bindText(st.st, 9, step.error);
        return sqlite3_step(st.st) == SQLITE_DONE ? Status::Ok() : stepError(db);
      },
      std::move(done), std::move(events));
}

Result<std::vector<RunRecord>> SqliteTaskStore::readRuns(const std::string& where, const std::function<void(void*)>& bind,
                                                         bool with_steps) {
  std::vector<RunRecord> out;
  Status s = read([&](sqlite3* db) -> Status {
    sqlite::Stmt st(db, std::string("SELECT ") + kRunColumns + " FROM workflow_runs " + where);
    if (bind) bind(st.st);
    int rc;
    while ((rc = sqlite3_step(st.st)) == SQLITE_ROW) out.push_back(readRun(st.st));
    if (rc != SQLITE_DONE) return stepError(db);
    if (!with_steps) return Status::Ok();
    sqlite::Stmt steps(db,
                       "SELECT node_id, status, attempts, task_id, started_ms, finished_ms, result, error "
                       "FROM workflow_steps WHERE run_id = ?");
    for (auto& r : out) {
      sqlite3_reset(steps.st);
      bindText(steps.st, 1, r.id);
      while ((rc = sqlite3_step(steps.st)) == SQLITE_ROW) {
        StepRecord step;
        step.run_id = r.id;
        step.node_id = sqlite::text(steps.st, 0);
        step.status = parseStepStatus(sqlite::text(steps.st, 1)).value_or(StepStatus::Failed);
        step.attempts = sqlite3_column_int(steps.st, 2);
        step.task_id = sqlite::text(steps.st, 3);
        step.started_ms = sqlite3_column_int64(steps.st, 4);
        step.finished_ms = sqlite3_column_int64(steps.st, 5);
        step.result = sqlite::load(sqlite3_column_text(steps.st, 6));
        step.error = sqlite::text(steps.st, 7);
        r.steps.push_back(std::move(step));
      }
      if (rc != SQLITE_DONE) return stepError(db);
    }
    return Status::Ok();
  });
  if (!s.ok()) return s.fullError();
  return out;
}

Result<std::optional<RunRecord>> SqliteTaskStore::getRun(const std::string& id) {
  auto rows = readRuns("WHERE id = ?", [&](void* st) { bindText(static_cast<sqlite3_stmt*>(st), 1, id); }, true);
  if (!rows) return rows.fullError();
  if (rows.value().empty()) return std::optional<RunRecord>{};
  return std::optional<RunRecord>{std::move(rows.value().front())};
}

Result<std::optional<std::string>> SqliteTaskStore::runByIdempotencyKey(const std::string& workflow_id,
                                                                        const std::string& key) {
  auto rows = readRuns("WHERE workflow_id = ? AND idempotency_key = ?", [&](void* p) {
    auto* st = static_cast<sqlite3_stmt*>(p);
    bindText(st, 1, workflow_id);
    bindText(st, 2, key);
  }, false);
  if (!rows) return rows.fullError();
  if (rows.value().empty()) return std::optional<std::string>{};
  return std::optional<std::string>{rows.value().front().id};
}

Result<std::vector<RunRecord>> SqliteTaskStore::listRuns(const std::string& workflow_id, int limit) {
  return readRuns("WHERE workflow_id = ? ORDER BY created_ms DESC, id DESC LIMIT ?", [&](void* p) {
    auto* st = static_cast<sqlite3_stmt*>(p);
    bindText(st, 1, workflow_id);
    sqlite3_bind_int(st, 2, limit);
  }, false);
}

Result<std::vector<RunRecord>> SqliteTaskStore::unfinishedRuns() {
  return readRuns("WHERE status IN ('pending','running') ORDER BY created_ms", nullptr, true);
}

}  // namespace dspy::orchestrator
