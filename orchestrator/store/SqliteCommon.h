// SQLite helpers the store's files share (internal to orchestrator/store/).
#pragma once

#include <sqlite3.h>

#include <string>

#include <nlohmann/json.hpp>

#include "common/Payload.h"
#include "common/Result.h"

namespace dspy::orchestrator::sqlite {

// A prepared statement freed at scope end.
struct Stmt {
  sqlite3_stmt* st = nullptr;
  Stmt(sqlite3* db, const std::string& sql) { sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr); }
  ~Stmt() { sqlite3_finalize(st); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
};

inline Status exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "unknown error";
    sqlite3_free(err);
    return Error{"sqlite: " + m + " (in: " + sql.substr(0, 60) + ")", ErrorKind::Internal};
  }
  return Status::Ok();
}

inline std::string text(sqlite3_stmt* st, int col) {
  const unsigned char* t = sqlite3_column_text(st, col);
  return t == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(t));
}

inline std::string dump(const Payload& p) { return payloadToJson(p); }

inline Payload load(const unsigned char* text) {
  if (text == nullptr) return {};
  auto j = nlohmann::json::parse(reinterpret_cast<const char*>(text), nullptr, false);
  if (!j.is_object()) return {};
  Payload out;
  for (const auto& [k, v] : j.items()) out[k] = v.is_string() ? v.get<std::string>() : v.dump();
  return out;
}

}  // namespace dspy::orchestrator::sqlite
