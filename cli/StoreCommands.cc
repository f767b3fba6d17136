// Backup and restore of the orchestrator's store.
#include "cli/StoreCommands.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "orchestrator/store/StoreBackup.h"

namespace dspy::cli {
namespace {

struct Options {
  std::string file;
  std::string store;
};

std::string defaultStore() {
  const char* env = std::getenv("ENV_QUEUE_DIR");
  return env != nullptr && *env != '\0' ? env : "/var/lib/dspy-agent/orchestrator";
}

void print(const orchestrator::StoreSummary& s) {
  std::printf("  schema version %d:", s.schema_version);
  for (const auto& [table, n] : s.rows) std::printf(" %s %lld", table.c_str(), static_cast<long long>(n));
  std::printf("\n");
}

int backup(const Options& o) {
  auto r = orchestrator::backupStore(o.store, o.file);
  if (!r) {
    std::fprintf(stderr, "backup failed: %s\n", r.error().c_str());
    return 1;
  }
  std::printf("backed up %s/orchestrator.db to %s\n", o.store.c_str(), o.file.c_str());
  print(r.value());
  return 0;
}

int restore(const Options& o) {
  std::string moved;
  auto r = orchestrator::restoreStore(o.file, o.store, &moved);
  if (!r) {
    std::fprintf(stderr, "restore failed: %s\n", r.error().c_str());
    return 1;
  }
  std::printf("restored %s into %s/orchestrator.db\n", o.file.c_str(), o.store.c_str());
  if (!moved.empty()) std::printf("  the previous database is kept as %s\n", moved.c_str());
  print(r.value());
  return 0;
}

}  // namespace

void addStoreCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<Options>();
  o->store = defaultStore();
  CLI::App* c = app.add_subcommand("backup", "a consistent copy of the orchestrator's store, taken while it runs");
  c->add_option("FILE", o->file, "where the copy goes")->required();
  c->add_option("--store", o->store, "the store directory ($ENV_QUEUE_DIR, else /var/lib/dspy-agent/orchestrator)");
  c->callback([o, exit_code] { *exit_code = backup(*o); });
  c = app.add_subcommand("restore", "put a backup in place of the store (the orchestrator must be stopped)");
  c->add_option("FILE", o->file, "a file written by dspy-agent backup")->required();
  c->add_option("--store", o->store, "the store directory ($ENV_QUEUE_DIR, else /var/lib/dspy-agent/orchestrator)");
  c->callback([o, exit_code] { *exit_code = restore(*o); });
}

}  // namespace dspy::cli
