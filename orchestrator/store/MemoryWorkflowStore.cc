// The in-memory store's workflow part (tests and benchmark baselines), through the same
// write queue as its tasks.
#include <algorithm>

#include "orchestrator/store/MemoryTaskStore.h"

namespace dspy::orchestrator {

void MemoryTaskStore::putWorkflow(const WorkflowRecord& w, Done done) {
  writeOp([this, w]() -> Status {
    auto& versions = workflows_[w.id];
    if (std::any_of(versions.begin(), versions.end(), [&](const WorkflowRecord& v) { return v.version == w.version; })) {
      return Error{"workflow '" + w.id + "' version " + std::to_string(w.version) + " exists", ErrorKind::AlreadyExists};
    }
    versions.push_back(w);
    return Status::Ok();
  }, std::move(done));
}

Result<std::optional<WorkflowRecord>> MemoryTaskStore::getWorkflow(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = workflows_.find(id);
  if (it == workflows_.end() || it->second.empty()) return std::optional<WorkflowRecord>{};
  return std::optional<WorkflowRecord>{it->second.back()};
}

Result<std::vector<WorkflowRecord>> MemoryTaskStore::listWorkflows() {
  std::lock_guard lock(mu_);
  std::vector<WorkflowRecord> out;
  for (const auto& [id, versions] : workflows_) {
    if (!versions.empty()) out.push_back(versions.back());
  }
  return out;
}

Result<std::vector<WorkflowRecord>> MemoryTaskStore::workflowHistory(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = workflows_.find(id);
  if (it == workflows_.end()) return std::vector<WorkflowRecord>{};
  return std::vector<WorkflowRecord>(it->second.rbegin(), it->second.rend());
}

void MemoryTaskStore::insertRun(const RunRecord& run, std::vector<Event> events, Done done) {
  writeOp([this, run]() -> Status {
    if (!run.idempotency_key.empty()) {
      for (const auto& [id, r] : runs_) {
        if (r.workflow_id == run.workflow_id && r.idempotency_key == run.idempotency_key) {
          return Error{"a run with idempotency key '" + run.idempotency_key + "' exists", ErrorKind::AlreadyExists};
        }
      }
    }
    RunRecord r = run;
    r.steps.clear();
    runs_[r.id] = std::move(r);
    for (const auto& s : run.steps) steps_[{s.run_id, s.node_id}] = s;
    run_order_.push_back(run.id);
    return Status::Ok();
  }, std::move(done), std::move(events));
}

void MemoryTaskStore::updateRun(const RunRecord& run, std::vector<Event> events, Done done) {
  writeOp([this, run]() -> Status {
    auto it = runs_.find(run.id);
    if (it == runs_.end()) return Error{"no run '" + run.id + "'", ErrorKind::NotFound};
    it->second.status = run.status;
    it->second.error = run.error;
    it->second.updated_ms = run.updated_ms;
    it->second.finished_ms = run.finished_ms;
    return Status::Ok();
  }, std::move(done), std::move(events));
}

void MemoryTaskStore::putStep(const StepRecord& step, std::vector<Event> events, Done done) {
  writeOp([this, step]() -> Status {
    steps_[{step.run_id, step.node_id}] = step;
    return Status::Ok();
  }, std::move(done), std::move(events));
}

RunRecord MemoryTaskStore::withSteps(RunRecord r) const {
  for (auto it = steps_.lower_bound({r.id, ""}); it != steps_.end() && it->first.first == r.id; ++it) {
    r.steps.push_back(it->second);
  }
  return r;
}

Result<std::optional<RunRecord>> MemoryTaskStore::getRun(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = runs_.find(id);
  if (it == runs_.end()) return std::optional<RunRecord>{};
  return std::optional<RunRecord>{withSteps(it->second)};
}

Result<std::optional<std::string>> MemoryTaskStore::runByIdempotencyKey(const std::string& workflow_id,
                                                                        const std::string& key) {
  std::lock_guard lock(mu_);
  for (const auto& [id, r] : runs_) {
    if (r.workflow_id == workflow_id && r.idempotency_key == key) return std::optional<std::string>{id};
  }
  return std::optional<std::string>{};
}

Result<std::vector<RunRecord>> MemoryTaskStore::listRuns(const std::string& workflow_id, int limit) {
  std::lock_guard lock(mu_);
  std::vector<RunRecord> out;
  for (auto it = run_order_.rbegin(); it != run_order_.rend() && static_cast<int>(out.size()) < limit; ++it) {
    const auto& r = runs_.at(*it);
    if (r.workflow_id == workflow_id) out.push_back(r);
  }
  return out;
}

Result<std::vector<RunRecord>> MemoryTaskStore::unfinishedRuns() {
  std::lock_guard lock(mu_);
  std::vector<RunRecord> out;
  for (const auto& id : run_order_) {
    const auto& r = runs_.at(id);
    if (!isTerminal(r.status)) out.push_back(withSteps(r));
  }
  return out;
}

}  // namespace dspy::orchestrator
