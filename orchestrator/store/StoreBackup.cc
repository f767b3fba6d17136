#include "orchestrator/store/StoreBackup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <chrono>
#include <filesystem>

#include "orchestrator/store/SqliteTaskStore.h"

namespace dspy::orchestrator {
namespace fs = std::filesystem;
namespace {

struct Db {
  sqlite3* db = nullptr;
  ~Db() { sqlite3_close_v2(db); }
};

Error sqliteError(const std::string& what, sqlite3* db) {
  return Error{what + ": " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory"), ErrorKind::Internal};
}

Result<StoreSummary> summarize(sqlite3* db, const std::string& name) {
  StoreSummary s;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, nullptr) != SQLITE_OK) {
    return Error{name + " is not an SQLite database the orchestrator wrote: " + sqlite3_errmsg(db),
                 ErrorKind::InvalidArgument};
  }
  std::string check;
  if (sqlite3_step(st) == SQLITE_ROW) check = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  if (check != "ok") return Error{name + " fails SQLite's check: " + check, ErrorKind::InvalidArgument};
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    s.schema_version = sqlite3_column_int(st, 0);
  }
  sqlite3_finalize(st);
  if (s.schema_version < 1) return Error{name + " is not an orchestrator store (no schema version)", ErrorKind::InvalidArgument};
  if (s.schema_version > SqliteTaskStore::kSchemaVersion) {
    return Error{name + " has schema version " + std::to_string(s.schema_version) + ", newer than this build's " +
                     std::to_string(SqliteTaskStore::kSchemaVersion),
                 ErrorKind::FailedPrecondition};
  }
  for (const char* table : {"tasks", "workflows", "workflow_runs", "workflow_steps", "slurm_jobs", "outbox"}) {
    const std::string sql = std::string("SELECT COUNT(*) FROM ") + table;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
      s.rows[table] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  if (!s.rows.count("tasks")) return Error{name + " has no tasks table: not an orchestrator store", ErrorKind::InvalidArgument};
  return s;
}

Status syncFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{"cannot open " + path + " to sync it", ErrorKind::Internal};
  const int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : Status(Error{"fsync " + path + " failed", ErrorKind::Internal});
}

}  // namespace

Result<StoreSummary> inspectStore(const std::string& file) {
  if (!fs::is_regular_file(file)) return Error{file + " does not exist or is not a file", ErrorKind::NotFound};
  Db db;
  if (sqlite3_open_v2(file.c_str(), &db.db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return sqliteError("cannot open " + file, db.db);
  }
  return summarize(db.db, file);
}

Result<StoreSummary> backupStore(const std::string& dir, const std::string& file) {
  const std::string source = dir + "/orchestrator.db";
  if (!fs::is_regular_file(source)) return Error{"no store at " + source, ErrorKind::NotFound};
  const std::string tmp = file + ".tmp";
  std::error_code ec;
  fs::remove(tmp, ec);
  Db src, dst;
  // Read-only, without creating anything: the running orchestrator owns the WAL.
  if (sqlite3_open_v2(source.c_str(), &src.db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return sqliteError("cannot open " + source, src.db);
  }
  sqlite3_busy_timeout(src.db, 10'000);
  if (sqlite3_open_v2(tmp.c_str(), &dst.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    return sqliteError("cannot create " + tmp, dst.db);
  }
  sqlite3_backup* b = sqlite3_backup_init(dst.db, "main", src.db, "main");
  if (b == nullptr) return sqliteError("backup of " + source, dst.db);
  // All pages in one step: one read transaction, so the copy is one consistent moment.
  int rc = sqlite3_backup_step(b, -1);
  while (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
    sqlite3_sleep(50);
    rc = sqlite3_backup_step(b, -1);
  }
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    fs::remove(tmp, ec);
    return Error{"backup of " + source + " failed: " + sqlite3_errstr(rc), ErrorKind::Internal};
  }
  auto summary = summarize(dst.db, tmp);
  sqlite3_close_v2(dst.db);
  dst.db = nullptr;
  if (!summary) {
    fs::remove(tmp, ec);
    return summary;
  }
  if (Status s = syncFile(tmp); !s.ok()) return s.fullError();
  fs::rename(tmp, file, ec);
  if (ec) return Error{"cannot move " + tmp + " to " + file + ": " + ec.message(), ErrorKind::Internal};
  return summary;
}

Result<StoreSummary> restoreStore(const std::string& file, const std::string& dir, std::string* moved_to) {
  auto summary = inspectStore(file);
  if (!summary) return summary;
  std::error_code ec;
  fs::create_directories(dir, ec);
  auto lock = lockStoreDir(dir);
  if (!lock) return Error{"cannot restore: " + lock.error(), lock.kind()};
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }
  } unlock{lock.value()};
  const std::string db = dir + "/orchestrator.db";
  moved_to->clear();
  // The copy is made and made the daemon's before anything moves: a restore that fails
  // leaves the store as it was. It takes the owner (and mode) of the database it
  // replaces, else of the directory: a restore run as root must not leave a file the
  // daemon's own user cannot write (systemd runs it as dspy-agent).
  const std::string tmp = db + ".restoring";
  fs::copy_file(file, tmp, fs::copy_options::overwrite_existing, ec);
  if (ec) return Error{"cannot copy " + file + " into " + dir + ": " + ec.message(), ErrorKind::Internal};
  struct ::stat owner {};
  const bool replacing = ::stat(db.c_str(), &owner) == 0;
  if (replacing || ::stat(dir.c_str(), &owner) == 0) {
    struct ::stat mine {};
    const bool differs = ::stat(tmp.c_str(), &mine) != 0 || mine.st_uid != owner.st_uid || mine.st_gid != owner.st_gid;
    if ((differs && ::chown(tmp.c_str(), owner.st_uid, owner.st_gid) != 0) ||
        (replacing && ::chmod(tmp.c_str(), owner.st_mode & 07777) != 0)) {
      const std::string why = std::strerror(errno);
      fs::remove(tmp, ec);
      return Error{"cannot give the restored database the owner " + std::to_string(owner.st_uid) + ":" +
                       std::to_string(owner.st_gid) + " of " + (replacing ? db : dir) + ": " + why +
                       " (run the restore as root or as that user)",
                   ErrorKind::FailedPrecondition};
    }
  }
  if (Status s = syncFile(tmp); !s.ok()) {
    fs::remove(tmp, ec);
    return s.fullError();
  }
  if (replacing) {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    *moved_to = db + ".before-restore-" + std::to_string(now);
    fs::rename(db, *moved_to, ec);
    if (ec) {
      fs::remove(tmp, ec);
      return Error{"cannot move " + db + " aside: " + ec.message(), ErrorKind::Internal};
    }
    for (const char* side : {"-wal", "-shm"}) {
      if (fs::exists(db + side)) fs::rename(db + side, *moved_to + side, ec);
    }
  }
  fs::rename(tmp, db, ec);
  if (ec) return Error{"cannot move " + tmp + " to " + db + ": " + ec.message(), ErrorKind::Internal};
  return summary;
}

}  // namespace dspy::orchestrator
