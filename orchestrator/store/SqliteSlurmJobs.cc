// The Slurm job rows of the SQLite store (table slurm_jobs, migration 4).
#include <sqlite3.h>

#include "orchestrator/store/SqliteCommon.h"
#include "orchestrator/store/SqliteTaskStore.h"

namespace dspy::orchestrator {
namespace {

constexpr const char* kJobColumns =
    "task_id, attempt, job_id, state, terminal, reason, error, exit_code, exit_signal, submit_ms, start_ms, end_ms, "
    "updated_ms, template, script_path, output_path, marker, nodes";

void bindText(sqlite3_stmt* st, int i, const std::string& s) { sqlite3_bind_text(st, i, s.c_str(), -1, SQLITE_TRANSIENT); }

SlurmJobRecord rowOf(sqlite3_stmt* st) {
  SlurmJobRecord j;
  j.task_id = sqlite::text(st, 0);
  j.attempt = sqlite3_column_int(st, 1);
  j.job_id = sqlite::text(st, 2);
  j.state = sqlite::text(st, 3);
  j.terminal = sqlite3_column_int(st, 4) != 0;
  j.reason = sqlite::text(st, 5);
  j.error = sqlite::text(st, 6);
  j.exit_code = sqlite3_column_int(st, 7);
  j.exit_signal = sqlite3_column_int(st, 8);
  j.submit_ms = sqlite3_column_int64(st, 9);
  j.start_ms = sqlite3_column_int64(st, 10);
  j.end_ms = sqlite3_column_int64(st, 11);
  j.updated_ms = sqlite3_column_int64(st, 12);
  j.template_name = sqlite::text(st, 13);
  j.script_path = sqlite::text(st, 14);
  j.output_path = sqlite::text(st, 15);
  j.marker = sqlite::text(st, 16);
  j.nodes = sqlite::text(st, 17);
  return j;
}

}  // namespace

void SqliteTaskStore::putSlurmJob(const SlurmJobRecord& job, std::vector<Event> events, Done done) {
  writeOp(
      [job](sqlite3* db) -> Status {
        sqlite::Stmt st(db, std::string("INSERT OR REPLACE INTO slurm_jobs (") + kJobColumns +
                                ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
        bindText(st.st, 1, job.task_id);
        sqlite3_bind_int(st.st, 2, job.attempt);
        bindText(st.st, 3, job.job_id);
        bindText(st.st, 4, job.state);
        sqlite3_bind_int(st.st, 5, job.terminal ? 1 : 0);
        bindText(st.st, 6, job.reason);
        bindText(st.st, 7, job.error);
        sqlite3_bind_int(st.st, 8, job.exit_code);
        sqlite3_bind_int(st.st, 9, job.exit_signal);
        sqlite3_bind_int64(st.st, 10, job.submit_ms);
        sqlite3_bind_int64(st.st, 11, job.start_ms);
        sqlite3_bind_int64(st.st, 12, job.end_ms);
        sqlite3_bind_int64(st.st, 13, job.updated_ms);
        bindText(st.st, 14, job.template_name);
        bindText(st.st, 15, job.script_path);
        bindText(st.st, 16, job.output_path);
        bindText(st.st, 17, job.marker);
        bindText(st.st, 18, job.nodes);
        if (sqlite3_step(st.st) != SQLITE_DONE) return Error{std::string("sqlite: ") + sqlite3_errmsg(db), ErrorKind::Internal};
        return Status::Ok();
      },
      std::move(done), std::move(events));
}

// One row (or none) of `where`, whose parameters `bind` sets.
Result<std::optional<SlurmJobRecord>> SqliteTaskStore::readSlurmJob(const std::string& where,
                                                                  const std::function<void(sqlite3_stmt*)>& bind) {
  std::optional<SlurmJobRecord> out;
  Status s = read([&](sqlite3* db) -> Status {
    sqlite::Stmt st(db, std::string("SELECT ") + kJobColumns + " FROM slurm_jobs " + where);
    bind(st.st);
    const int rc = sqlite3_step(st.st);
    if (rc == SQLITE_ROW) out = rowOf(st.st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error{std::string("sqlite: ") + sqlite3_errmsg(db), ErrorKind::Internal};
    return Status::Ok();
  });
  if (!s.ok()) return s.fullError();
  return out;
}

Result<std::optional<SlurmJobRecord>> SqliteTaskStore::getSlurmJob(const std::string& task_id, int attempt) {
  return readSlurmJob("WHERE task_id=? AND attempt=?", [&](sqlite3_stmt* st) {
    bindText(st, 1, task_id);
    sqlite3_bind_int(st, 2, attempt);
  });
}

Result<std::optional<SlurmJobRecord>> SqliteTaskStore::latestSlurmJob(const std::string& task_id) {
  return readSlurmJob("WHERE task_id=? ORDER BY attempt DESC LIMIT 1",
                      [&](sqlite3_stmt* st) { bindText(st, 1, task_id); });
}

}  // namespace dspy::orchestrator
