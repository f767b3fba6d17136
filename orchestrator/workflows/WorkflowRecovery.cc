// Resuming unfinished runs after a restart (even SIGKILL): finished steps stay finished,
// a running step's task is found again by its id or submitted again.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "orchestrator/workflows/LiveRun.h"
#include "orchestrator/workflows/WorkflowEngine.h"

namespace dspy::orchestrator {

// ------------------------------------------------------------------ recovery

Status WorkflowEngine::recover() {
  auto runs = store_.unfinishedRuns();
  if (!runs) return runs.fullError();
  std::map<std::pair<std::string, int>, std::shared_ptr<const WorkflowSpec>> specs;
  int resumed = 0;
  for (auto& rec : runs.value()) {
    auto key = std::make_pair(rec.workflow_id, rec.workflow_version);
    if (!specs.count(key)) {
      auto h = store_.workflowHistory(rec.workflow_id);
      if (!h) return h.fullError();
      for (const auto& w : h.value()) {
        if (w.version != rec.workflow_version) continue;
        auto spec = workflowSpecFromJson(w.document, SpecLimits{.max_nodes = 1 << 30, .max_bytes = INT64_MAX});
        if (spec) specs[key] = std::make_shared<const WorkflowSpec>(std::move(spec).value());
      }
    }
    auto live = std::make_unique<Live>();
    live->spec = specs[key];
    if (!live->spec) {
      spdlog::error("workflow run {}: version {} of workflow {} is missing; the run fails", rec.id,
                    rec.workflow_version, rec.workflow_id);
      rec.status = RunStatus::Failed;
      rec.error = "its workflow version is missing from the store";
      rec.finished_ms = nowMs();
      store_.updateRun(rec,
                       {makeEvent("workflow_failed",
                                  {{"run_id", rec.id}, {"workflow_id", rec.workflow_id}, {"error", rec.error}})},
                       nullptr);
      continue;
    }
    // Steps in the spec's order; a step the store does not have is pending.
    std::map<std::string, StepRecord> stored;
    for (auto& s : rec.steps) stored[s.node_id] = std::move(s);
    rec.steps.clear();
    for (const auto& n : live->spec->nodes) {
      live->index[n.id] = rec.steps.size();
      auto s = stored.find(n.id);
      rec.steps.push_back(s != stored.end() ? s->second : StepRecord{.run_id = rec.id, .node_id = n.id});
    }
    for (const auto& e : live->spec->edges) {
      auto& d = live->dependents[e.source];
      if (std::find(d.begin(), d.end(), e.target) == d.end()) d.push_back(e.target);
    }
    for (const auto& n : live->spec->nodes) {
      int waiting = 0;
      for (const auto& dep : live->spec->dependencies(n.id)) {
        waiting += rec.steps[live->index[dep]].status == StepStatus::Succeeded ? 0 : 1;
      }
      live->waiting[n.id] = waiting;
    }
    live->rec = std::move(rec);
    Actions actions;
    {
      std::lock_guard lock(mu_);
      const std::string id = live->rec.id;
      Live& run = *(live_[id] = std::move(live));
      run.halted = std::any_of(run.rec.steps.begin(), run.rec.steps.end(), [&](const StepRecord& s) {
        return s.status == StepStatus::Failed && run.spec->failure_policy == FailurePolicy::Stop;
      });
      for (std::size_t i = 0; i < run.rec.steps.size(); ++i) {
        StepRecord& s = run.rec.steps[i];
        if (s.status != StepStatus::Running) continue;
        if (s.task_id.empty()) {  // a services step: ask again (starting what runs is a no-op)
          s.status = StepStatus::Pending;
          readyLocked(run, s.node_id, actions);
          continue;
        }
        task_steps_[s.task_id] = {run.rec.id, s.node_id};
        auto t = tasks_.get(s.task_id);
        if (t.ok() && isTerminal(t.value().status)) {
          task_steps_.erase(s.task_id);
          const StepStatus st = t.value().status == TaskStatus::Completed ? StepStatus::Succeeded : StepStatus::Failed;
          finishStepLocked(run, s.node_id, st, t.value().result, st == StepStatus::Succeeded ? "" : t.value().error,
                           t.value().attempts, actions);
          if (!live_.count(run.rec.id)) break;  // that ended the run
        } else if (!t.ok()) {
          // Recorded running, but its task never became durable: submit it again.
          task_steps_.erase(s.task_id);
          s.status = StepStatus::Pending;
          s.task_id.clear();
          readyLocked(run, s.node_id, actions);
        }
      }
      if (live_.count(run.rec.id)) {
        for (const auto& n : run.spec->nodes) {
          if (run.waiting[n.id] == 0) readyLocked(run, n.id, actions);
        }
        settleLocked(run, actions);
      }
    }
    perform(actions);
    ++resumed;
  }
  if (resumed > 0) spdlog::info("resumed {} unfinished workflow run(s)", resumed);
  return Status::Ok();
}


}  // namespace dspy::orchestrator
