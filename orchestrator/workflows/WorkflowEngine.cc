// The workflow engine's front: workflows and their versions, starting, cancelling and
// reading runs, watchers. What steps do is in WorkflowSteps.cc, resuming runs after a
// restart in WorkflowRecovery.cc.
#include "orchestrator/workflows/WorkflowEngine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <future>

#include "common/Text.h"
#include "orchestrator/workflows/LiveRun.h"

namespace dspy::orchestrator {

WorkflowEngine::WorkflowEngine(WorkflowConfig cfg, WorkflowStore& store, TaskEngine& tasks, Clock& clock,
                               ServicesStarter services)
    : cfg_(cfg), store_(store), tasks_(tasks), clock_(clock), services_(std::move(services)) {}

WorkflowEngine::~WorkflowEngine() { stop(); }

void WorkflowEngine::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  stop_.request_stop();
}

std::int64_t WorkflowEngine::nowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.systemTime().time_since_epoch()).count();
}

void WorkflowEngine::perform(Actions& actions) {
  std::vector<std::unique_ptr<Live>> ended;
  {
    // No critical section is running now, so none holds a reference to these.
    std::lock_guard lock(mu_);
    ended.swap(ended_);
  }
  for (auto& a : actions) a();
  actions.clear();
}

int WorkflowEngine::liveRuns() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(live_.size());
}

// ------------------------------------------------------------------ workflows

Result<WorkflowRecord> WorkflowEngine::putWorkflow(const std::string& spec_text, const std::string& id, PutMode mode) {
  auto spec = parseWorkflowSpec(spec_text, cfg_.limits);
  if (!spec) return spec.fullError();
  std::string wid = id.empty() ? spec.value().id : id;
  if (!id.empty() && !spec.value().id.empty() && spec.value().id != id) {
    return Error{"the spec's id '" + spec.value().id + "' is not the workflow '" + id + "'", ErrorKind::InvalidArgument};
  }
  if (wid.empty()) wid = "wf-" + generateTaskId().substr(5);
  if (Status s = validateTaskId(wid); !s.ok()) return s.fullError();
  auto existing = store_.getWorkflow(wid);
  if (!existing) return existing.fullError();
  if (existing.value() && mode == PutMode::Create) {
    return Error{"workflow '" + wid + "' exists; update it instead (PUT /workflows/" + wid + ")", ErrorKind::AlreadyExists};
  }
  if (!existing.value() && mode == PutMode::Replace) return Error{"no workflow with id '" + wid + "'", ErrorKind::NotFound};
  WorkflowRecord rec;
  rec.id = wid;
  rec.name = spec.value().name;
  rec.version = existing.value() ? existing.value()->version + 1 : 1;
  rec.updated_ms = nowMs();
  rec.created_ms = existing.value() ? existing.value()->created_ms : rec.updated_ms;
  rec.document = spec.value().document;
  rec.document["id"] = wid;
  rec.document["version"] = rec.version;
  rec.document["created_at"] = rfc3339Ms(rec.created_ms);
  rec.document["updated_at"] = rfc3339Ms(rec.updated_ms);
  std::promise<Status> written;
  store_.putWorkflow(rec, [&written](Status s) { written.set_value(s); });
  if (Status s = written.get_future().get(); !s.ok()) return s.fullError();
  return rec;
}

std::shared_ptr<const WorkflowSpec> WorkflowEngine::specOf(const std::string& workflow_id, int version) {
  const auto key = std::make_pair(workflow_id, version);
  {
    std::lock_guard lock(mu_);
    if (auto it = specs_.find(key); it != specs_.end()) return it->second;
  }
  auto h = store_.workflowHistory(workflow_id);
  if (!h) return nullptr;
  for (const auto& w : h.value()) {
    if (w.version != version) continue;
    auto spec = workflowSpecFromJson(w.document, SpecLimits{.max_nodes = 1 << 30, .max_bytes = INT64_MAX});
    if (!spec) return nullptr;
    auto shared = std::make_shared<const WorkflowSpec>(std::move(spec).value());
    std::lock_guard lock(mu_);
    specs_[key] = shared;
    return shared;
  }
  return nullptr;
}

Result<WorkflowRecord> WorkflowEngine::getWorkflow(const std::string& id) {
  auto w = store_.getWorkflow(id);
  if (!w) return w.fullError();
  if (!w.value()) return Error{"no workflow with id '" + id + "'", ErrorKind::NotFound};
  return *w.value();
}

Result<std::vector<WorkflowRecord>> WorkflowEngine::listWorkflows() { return store_.listWorkflows(); }

Result<std::vector<WorkflowRecord>> WorkflowEngine::history(const std::string& id) {
  auto h = store_.workflowHistory(id);
  if (h && h.value().empty()) return Error{"no workflow with id '" + id + "'", ErrorKind::NotFound};
  return h;
}

// ------------------------------------------------------------------ runs

void WorkflowEngine::startRun(const std::string& workflow_id, const std::string& idempotency_key, const Payload& input,
                              RunDone done) {
  auto wf = getWorkflow(workflow_id);
  if (!wf) return done(wf.fullError());
  if (!idempotency_key.empty()) {
    auto existing = store_.runByIdempotencyKey(workflow_id, idempotency_key);
    if (!existing) return done(existing.fullError());
    if (existing.value()) return done(getRun(*existing.value()));
  }
  auto spec = workflowSpecFromJson(wf.value().document, SpecLimits{.max_nodes = 1 << 30, .max_bytes = INT64_MAX});
  if (!spec) return done(Error{"stored workflow '" + workflow_id + "' no longer parses: " + spec.error(), ErrorKind::Internal});
  auto live = std::make_unique<Live>();
  live->spec = std::make_shared<const WorkflowSpec>(std::move(spec).value());
  RunRecord& r = live->rec;
  r.id = "run-" + generateTaskId().substr(5);
  r.workflow_id = workflow_id;
  r.workflow_version = wf.value().version;
  r.idempotency_key = idempotency_key;
  r.status = RunStatus::Running;
  r.input = input;
  r.created_ms = r.updated_ms = nowMs();
  for (const auto& n : live->spec->nodes) {
    live->index[n.id] = r.steps.size();
    r.steps.push_back(StepRecord{.run_id = r.id, .node_id = n.id});
    live->waiting[n.id] = static_cast<int>(live->spec->dependencies(n.id).size());
  }
  for (const auto& e : live->spec->edges) {
    auto& d = live->dependents[e.source];
    if (std::find(d.begin(), d.end(), e.target) == d.end()) d.push_back(e.target);
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_) return done(Error{"the orchestrator is shutting down", ErrorKind::Unavailable});
    if (static_cast<int>(live_.size()) >= cfg_.max_live_runs) {
      return done(Error{std::to_string(live_.size()) + " runs are live (workflows.max_live_runs); retry later",
                        ErrorKind::Unavailable});
    }
  }
  const RunRecord first = r;
  std::vector<Event> started{makeEvent("workflow_started", {{"run_id", r.id}, {"workflow_id", workflow_id}})};
  started.front().first_of_resource = true;  // a fresh run id
  store_.insertRun(first, std::move(started), [this, live = std::shared_ptr<Live>(std::move(live)), done, workflow_id,
                           idempotency_key](Status s) mutable {
    if (!s.ok()) {
      if (s.kind() == ErrorKind::AlreadyExists && !idempotency_key.empty()) {  // a concurrent start won
        auto existing = store_.runByIdempotencyKey(workflow_id, idempotency_key);
        if (existing && existing.value()) return done(getRun(*existing.value()));
      }
      return done(s.fullError());
    }
    Actions actions;
    RunRecord snapshot;
    {
      std::lock_guard lock(mu_);
      const std::string id = live->rec.id;
      auto& run = *(live_[id] = std::make_unique<Live>(std::move(*live)));
      for (const auto& n : run.spec->nodes) {
        if (run.waiting[n.id] == 0) readyLocked(run, n.id, actions);
      }
      settleLocked(run, actions);  // a no-op when a step's end already settled it
      snapshot = run.rec;
    }
    perform(actions);
    done(snapshot);
  });
}

Status WorkflowEngine::cancelRun(const std::string& run_id) {
  Actions actions;
  {
    std::lock_guard lock(mu_);
    auto it = live_.find(run_id);
    if (it == live_.end()) {
      auto stored = store_.getRun(run_id);
      if (!stored) return stored.fullError();
      if (!stored.value()) return Error{"no workflow run with id '" + run_id + "'", ErrorKind::NotFound};
      return Error{"run '" + run_id + "' already ended (" + toString(stored.value()->status) + ")",
                   ErrorKind::FailedPrecondition};
    }
    Live& run = *it->second;
    run.cancel_requested = true;
    run.halted = true;
    for (std::size_t i = 0; i < run.rec.steps.size(); ++i) {
      StepRecord& s = run.rec.steps[i];
      if (s.status == StepStatus::Pending) {
        s.status = StepStatus::Skipped;
        s.error = "the run was cancelled";
        s.finished_ms = nowMs();
        persistStepLocked(run, i, nullptr, actions);
      } else if (s.status == StepStatus::Running && !s.task_id.empty()) {
        actions.push_back([this, id = s.task_id] { (void)tasks_.cancel(id); });
      }
    }
    emitLocked(run, "workflow_cancelled", {{"run_id", run_id}, {"workflow_id", run.rec.workflow_id}});
    flushEventsLocked(run, actions);
    settleLocked(run, actions);
  }
  perform(actions);
  return Status::Ok();
}

Result<RunRecord> WorkflowEngine::getRun(const std::string& run_id) {
  {
    std::lock_guard lock(mu_);
    auto it = live_.find(run_id);
    if (it != live_.end()) return it->second->rec;
    auto ending = ending_.find(run_id);
    if (ending != ending_.end()) return ending->second;
  }
  auto r = store_.getRun(run_id);
  if (!r) return r.fullError();
  if (!r.value()) return Error{"no workflow run with id '" + run_id + "'", ErrorKind::NotFound};
  RunRecord rec = std::move(*r.value());
  // Steps in the spec's node order, as a live run has them.
  if (auto spec = specOf(rec.workflow_id, rec.workflow_version)) {
    std::map<std::string, std::size_t> order;
    for (const auto& n : spec->nodes) order.emplace(n.id, order.size());
    std::stable_sort(rec.steps.begin(), rec.steps.end(), [&](const StepRecord& a, const StepRecord& b) {
      return order[a.node_id] < order[b.node_id];
    });
  }
  return rec;
}

Result<std::vector<RunRecord>> WorkflowEngine::listRuns(const std::string& workflow_id, int limit) {
  return store_.listRuns(workflow_id, std::clamp(limit, 1, 1000));
}

std::shared_ptr<RunWatch> WorkflowEngine::watch(const std::string& run_id, RunRecord* snapshot, Status* status) {
  auto w = std::make_shared<RunWatch>();
  {
    std::lock_guard lock(mu_);
    auto it = live_.find(run_id);
    if (it != live_.end()) {
      watches_[run_id].push_back(w);
      *snapshot = it->second->rec;
      *status = Status::Ok();
      return w;
    }
  }
  auto r = getRun(run_id);  // ended (or unknown): the snapshot is all there is
  if (!r) {
    *status = r.fullError();
    return nullptr;
  }
  *snapshot = r.value();
  *status = Status::Ok();
  return nullptr;
}

void WorkflowEngine::unwatch(const std::shared_ptr<RunWatch>& w) {
  if (!w) return;
  std::lock_guard lock(mu_);
  for (auto it = watches_.begin(); it != watches_.end();) {
    it->second.remove(w);
    it = it->second.empty() ? watches_.erase(it) : std::next(it);
  }
}

}  // namespace dspy::orchestrator
