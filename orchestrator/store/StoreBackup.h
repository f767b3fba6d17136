// Backup and restore of the orchestrator's store (dspy-agent backup / restore).
// A backup is a consistent copy of orchestrator.db taken with SQLite's online backup
// while the orchestrator runs (one read transaction: every write committed before it
// began is in the copy, none after). A restore needs the orchestrator stopped (the
// store directory's lock tells), checks the file, keeps the current database beside it
// and puts the backup in its place.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/Result.h"

namespace dspy::orchestrator {

struct StoreSummary {
  int schema_version = 0;
  std::map<std::string, std::int64_t> rows;  // table -> row count
};

// Copies `dir`/orchestrator.db into `file` (written as file.tmp, checked, then renamed).
Result<StoreSummary> backupStore(const std::string& dir, const std::string& file);
// Replaces `dir`/orchestrator.db with `file`; the old database (with its WAL) moves to
// `dir`/orchestrator.db.before-restore-<unix seconds>. `moved_to` gets that name ("" if
// there was none).
Result<StoreSummary> restoreStore(const std::string& file, const std::string& dir, std::string* moved_to);
// Opens `file` read-only and checks it is a store this build can open.
Result<StoreSummary> inspectStore(const std::string& file);

}  // namespace dspy::orchestrator
