// Task views shared by the gRPC service and the HTTP API.
#include "orchestrator/api/TaskViews.h"

#include "common/Text.h"

namespace dspy::orchestrator {

double durationMs(const TaskRecord& t) {
  if (t.started_ms == 0) return 0;
  const auto end = t.finished_ms ? t.finished_ms : unixMillis();
  return static_cast<double>(end - t.started_ms);
}

nlohmann::json toJson(const TaskRecord& t) {
  nlohmann::json j = {{"id", t.id},           {"class", t.cls},         {"status", toString(t.status)},
                      {"priority", t.priority}, {"workflow_id", t.workflow_id}, {"attempts", t.attempts},
                      {"payload", t.payload}, {"result", t.result},     {"error", t.error},
                      {"submitted_at_ms", t.submitted_ms}, {"started_at_ms", t.started_ms},
                      {"finished_at_ms", t.finished_ms}, {"duration_ms", durationMs(t)}};
  return j;
}

Result<TaskFilter> makeFilter(const std::string& status, const std::string& cls, const std::string& workflow_id,
                              std::int64_t limit, const std::string& token) {
  TaskFilter f;
  if (!status.empty()) {
    f.status = parseTaskStatus(status);
    if (!f.status) {
      return Error{"unknown status '" + status + "' (pending, running, completed, failed, cancelled)",
                   ErrorKind::InvalidArgument};
    }
  }
  f.cls = cls;
  f.workflow_id = workflow_id;
  if (limit < 0 || limit > 1000) return Error{"page size must be between 0 and 1000", ErrorKind::InvalidArgument};
  f.limit = limit == 0 ? 100 : static_cast<int>(limit);
  if (!token.empty()) {
    auto seq = parseInt(token, 0);
    if (!seq) return Error{"bad page token '" + token + "'", ErrorKind::InvalidArgument};
    f.after_seq = *seq;
  }
  return f;
}

}  // namespace dspy::orchestrator
