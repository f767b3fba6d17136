#include "orchestrator/api/WorkflowViews.h"

#include "common/Text.h"

namespace dspy::orchestrator {

nlohmann::json workflowSummary(const WorkflowRecord& w) {
  const auto& d = w.document;
  return {{"id", w.id},
          {"name", w.name},
          {"description", d.value("description", std::string())},
          {"tags", d.contains("tags") && d["tags"].is_array() ? d["tags"] : nlohmann::json::array()},
          {"tenant", d.value("tenant", std::string())},
          {"version", w.version},
          {"updated_at", rfc3339Ms(w.updated_ms)},
          {"node_count", d.contains("nodes") ? d["nodes"].size() : 0},
          {"edge_count", d.contains("edges") && d["edges"].is_array() ? d["edges"].size() : 0}};
}

std::string stepAction(const NodeSpec& n) {
  if (n.type == "reward" || n.type == "deployment") {
    return "event:workflow_" + n.type +
           (n.config.contains("task") ? " + task:" + n.config["task"].value("class", std::string("cpu_short")) : "");
  }
  if (n.type == "services") return "services";
  if (n.type == "training") return "slurm";
  std::string cls = n.config.value("class", std::string("cpu_short"));
  if (n.type == "signature" || n.type == "verifier") {
    const std::string domain = n.config.value("execution_domain", std::string());
    cls = (domain == "gpu" || domain == "cuda" || domain == "accelerated") ? "gpu_slurm"
          : domain == "cpu_long"                                            ? "cpu_long"
                                                                            : "cpu_short";
  }
  return "task:" + cls;
}

nlohmann::json runJson(const RunRecord& r, const WorkflowSpec* spec) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : r.steps) {
    const NodeSpec* node = spec ? spec->node(s.node_id) : nullptr;
    nlohmann::json j{{"node_id", s.node_id},
                     {"name", node ? node->name : s.node_id},
                     {"type", node ? node->type : ""},
                     {"action", node ? stepAction(*node) : ""},
                     {"status", toString(s.status)},
                     {"attempts", s.attempts}};
    if (!s.task_id.empty()) j["task_id"] = s.task_id;
    if (s.started_ms) j["started_at"] = rfc3339Ms(s.started_ms);
    if (s.finished_ms) j["completed_at"] = rfc3339Ms(s.finished_ms);
    if (!s.result.empty()) j["result"] = s.result;
    if (!s.error.empty()) j["error"] = s.error;
    steps.push_back(std::move(j));
  }
  nlohmann::json out{{"id", r.id},
                     {"workflow_id", r.workflow_id},
                     {"workflow_name", spec ? spec->name : ""},
                     {"workflow_version", r.workflow_version},
                     {"status", toString(r.status)},
                     {"created_at", rfc3339Ms(r.created_ms)},
                     {"updated_at", rfc3339Ms(r.updated_ms)},
                     {"steps", steps},
                     {"input", r.input},
                     {"metadata", nlohmann::json::object()},
                     {"idempotency_key", r.idempotency_key}};
  if (r.finished_ms) out["completed_at"] = rfc3339Ms(r.finished_ms);
  if (!r.error.empty()) out["error"] = r.error;
  return out;
}

const char* updateStatus(RunStatus s) {
  switch (s) {
    case RunStatus::Pending: return "pending";
    case RunStatus::Running: return "running";
    case RunStatus::Succeeded: return "completed";
    case RunStatus::Failed: return "failed";
    case RunStatus::Cancelled: return "cancelled";
  }
  return "failed";
}

}  // namespace dspy::orchestrator
