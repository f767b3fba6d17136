// The SQLite store's outbox (EventLog): reads on the reader connection, marks and prunes
// through the write queue, so they share the group commits of the task writes.
#include <sqlite3.h>

#include <chrono>

#include "orchestrator/store/SqliteCommon.h"
#include "orchestrator/store/SqliteTaskStore.h"

namespace dspy::orchestrator {

namespace {
std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
Status stepError(sqlite3* db) { return Error{std::string("sqlite: ") + sqlite3_errmsg(db), ErrorKind::Internal}; }
}  // namespace

void SqliteTaskStore::setRelayed(bool relayed) { relayed_ = relayed; }

void SqliteTaskStore::setCommitted(Committed fn) { writes_->setCommitted(std::move(fn)); }

void SqliteTaskStore::appendEvents(std::vector<Event> events, Done done) {
  writeOp([](sqlite3*) { return Status::Ok(); }, std::move(done), std::move(events));
}

Result<std::vector<Event>> SqliteTaskStore::readEvents(std::int64_t after_seq, int limit, bool pending_only) {
  std::vector<Event> out;
  Status s = read([&](sqlite3* db) -> Status {
    const std::string sql =
        std::string("SELECT seq, event_id, type, resource_id, resource_seq, ts_ns, source, data FROM outbox ") +
        (pending_only ? "INDEXED BY outbox_pending WHERE delivered_ms IS NULL AND seq > ?" : "WHERE seq > ?") +
        " ORDER BY seq LIMIT ?";
    sqlite::Stmt st(db, sql);
    sqlite3_bind_int64(st.st, 1, after_seq);
    sqlite3_bind_int(st.st, 2, limit);
    int rc;
    while ((rc = sqlite3_step(st.st)) == SQLITE_ROW) {
      Event e;
      e.seq = sqlite3_column_int64(st.st, 0);
      e.id = sqlite::text(st.st, 1);
      e.type = sqlite::text(st.st, 2);
      e.resource_id = sqlite::text(st.st, 3);
      e.resource_seq = sqlite3_column_int64(st.st, 4);
      e.ts_ns = sqlite3_column_int64(st.st, 5);
      e.source = sqlite::text(st.st, 6);
      e.data = sqlite::load(sqlite3_column_text(st.st, 7));
      out.push_back(std::move(e));
    }
    return rc == SQLITE_DONE ? Status::Ok() : stepError(db);
  });
  if (!s.ok()) return s.fullError();
  return out;
}

Result<std::int64_t> SqliteTaskStore::seqBefore(std::int64_t ts_ns) {
  // Commit times never decrease along seq, so the first event at or after ts_ns is found
  // by a binary search over seq (each probe one primary-key lookup).
  std::int64_t answer = 0;
  // Read before the snapshot below: every event up to it is committed, so an empty
  // snapshot means they were all pruned. (last_seq_ read after the snapshot could
  // include an event committed in between, which the caller would then skip: a
  // StreamEvents started as the first event of a fresh store was committed lost it.)
  const std::int64_t committed_before = last_seq_.load();
  Status s = read([&](sqlite3* db) -> Status {
    sqlite::Stmt bounds(db, "SELECT MIN(seq), MAX(seq) FROM outbox");
    if (sqlite3_step(bounds.st) != SQLITE_ROW) return stepError(db);
    if (sqlite3_column_type(bounds.st, 0) == SQLITE_NULL) {
      answer = committed_before;
      return Status::Ok();
    }
    std::int64_t lo = sqlite3_column_int64(bounds.st, 0), hi = sqlite3_column_int64(bounds.st, 1) + 1;
    const std::int64_t first = lo;
    sqlite::Stmt probe(db, "SELECT seq, ts_ns FROM outbox WHERE seq >= ? ORDER BY seq LIMIT 1");
    // Find the smallest seq in [lo, hi) whose event is at or after ts_ns (hi: none).
    while (lo < hi) {
      const std::int64_t mid = lo + (hi - lo) / 2;
      sqlite3_reset(probe.st);
      sqlite3_bind_int64(probe.st, 1, mid);
      if (sqlite3_step(probe.st) != SQLITE_ROW) {
        hi = mid;
        continue;
      }
      const std::int64_t seq = sqlite3_column_int64(probe.st, 0), ts = sqlite3_column_int64(probe.st, 1);
      if (ts >= ts_ns) {
        hi = mid;
      } else {
        lo = seq + 1;
      }
    }
    answer = lo <= first ? first - 1 : lo - 1;
    return Status::Ok();
  });
  if (!s.ok()) return s.fullError();
  return answer;
}

void SqliteTaskStore::markDelivered(std::vector<std::int64_t> seqs, Done done) {
  writeOp([this, seqs = std::move(seqs)](sqlite3* db) -> Status {
    sqlite::Stmt st(db, "UPDATE outbox SET delivered_ms=? WHERE seq=? AND delivered_ms IS NULL");
    const std::int64_t now = nowMs();
    std::int64_t marked = 0;
    for (const auto seq : seqs) {
      sqlite3_reset(st.st);
      sqlite3_bind_int64(st.st, 1, now);
      sqlite3_bind_int64(st.st, 2, seq);
      if (sqlite3_step(st.st) != SQLITE_DONE) return stepError(db);
      marked += sqlite3_changes(db);
    }
    // Counted at once: a rollback of this batch would make the relay send them again,
    // and the count catches up on the next start.
    pending_ -= marked;
    return Status::Ok();
  }, std::move(done));
}

void SqliteTaskStore::pruneEvents(std::int64_t before_ns, int max_rows, std::function<void(Result<std::int64_t>)> done) {
  auto count = std::make_shared<std::int64_t>(0);
  writeOp([count, before_ns, max_rows](sqlite3* db) -> Status {
    // The newest event always stays (it carries the last seq across restarts); a pruned
    // resource's last sequence number moves to event_resources.
    const std::string victims =
        "SELECT seq FROM outbox WHERE ts_ns < ?1 AND delivered_ms IS NOT NULL "
        "AND seq < (SELECT MAX(seq) FROM outbox) ORDER BY seq LIMIT ?2";
    sqlite::Stmt keep(db,
                      "INSERT INTO event_resources (resource_id, last_seq) SELECT resource_id, MAX(resource_seq) "
                      "FROM outbox WHERE seq IN (" + victims + ") GROUP BY resource_id "
                      "ON CONFLICT(resource_id) DO UPDATE SET last_seq=MAX(last_seq, excluded.last_seq)");
    sqlite3_bind_int64(keep.st, 1, before_ns);
    sqlite3_bind_int(keep.st, 2, max_rows);
    if (sqlite3_step(keep.st) != SQLITE_DONE) return stepError(db);
    sqlite::Stmt del(db, "DELETE FROM outbox WHERE seq IN (" + victims + ")");
    sqlite3_bind_int64(del.st, 1, before_ns);
    sqlite3_bind_int(del.st, 2, max_rows);
    if (sqlite3_step(del.st) != SQLITE_DONE) return stepError(db);
    *count = sqlite3_changes(db);
    return Status::Ok();
  }, [count, done = std::move(done)](Status s) {
    if (!s.ok()) return done(s.fullError());
    done(*count);
  });
}

OutboxStats SqliteTaskStore::outboxStats() {
  OutboxStats st;
  st.pending = pending_;
  st.last_seq = last_seq_;
  if (st.pending > 0) {
    (void)read([&](sqlite3* db) -> Status {
      sqlite::Stmt q(db, "SELECT ts_ns FROM outbox INDEXED BY outbox_pending WHERE delivered_ms IS NULL ORDER BY seq LIMIT 1");
      if (sqlite3_step(q.st) == SQLITE_ROW) st.oldest_pending_ns = sqlite3_column_int64(q.st, 0);
      return Status::Ok();
    });
  }
  return st;
}

}  // namespace dspy::orchestrator
