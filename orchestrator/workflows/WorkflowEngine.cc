#include "orchestrator/workflows/WorkflowEngine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <future>
#include <regex>

namespace dspy::orchestrator {
namespace {

using json = nlohmann::json;

std::string rfc3339(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string asText(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// The task class a signature or verifier node runs under.
std::string classOf(const NodeSpec& n) {
  if (n.type == "task" || n.type == "custom") return n.config.value("class", std::string("cpu_short"));
  if (n.type == "reward" || n.type == "deployment") return n.config["task"].value("class", std::string("cpu_short"));
  const std::string domain = n.config.value("execution_domain", std::string());
  if (domain == "gpu" || domain == "cuda" || domain == "accelerated") return "gpu_slurm";
  if (domain == "cpu_long") return "cpu_long";
  return "cpu_short";
}

// The payload a task node submits, before references are resolved.
Payload payloadOf(const NodeSpec& n) {
  Payload p;
  const bool own_task = n.type == "reward" || n.type == "deployment";
  if (n.type == "task" || own_task) {
    const json& t = own_task ? n.config["task"] : n.config;
    if (t.contains("payload")) {
      for (const auto& [k, v] : t["payload"].items()) p[k] = asText(v);
    }
    return p;
  }
  for (const auto& [k, v] : n.config.items()) {
    if (n.type == "custom" && k == "class") continue;
    p[k] = asText(v);
  }
  if (n.type == "signature" || n.type == "verifier") p["node_type"] = n.type;
  return p;
}

// Replaces ${input.KEY} and ${steps.NODE.KEY}; an unknown reference is an error.
Result<std::string> resolve(const std::string& value, const RunRecord& run, const std::map<std::string, std::size_t>& index) {
  static const std::regex ref(R"(\$\{(input|steps)\.([A-Za-z0-9_.:-]+?)(?:\.([A-Za-z0-9_:-]+))?\})");
  std::string out;
  auto begin = value.cbegin();
  for (std::sregex_iterator it(value.begin(), value.end(), ref), end; it != end; ++it) {
    const auto& m = *it;
    out.append(begin, m[0].first);
    begin = m[0].second;
    if (m[1] == "input") {
      const std::string key = m[2].str() + (m[3].matched ? "." + m[3].str() : "");
      auto v = run.input.find(key);
      if (v == run.input.end()) return Error{"reference " + m[0].str() + ": the run has no input '" + key + "'", ErrorKind::InvalidArgument};
      out += v->second;
      continue;
    }
    const std::string node = m[2].str();
    auto i = index.find(node);
    if (!m[3].matched || i == index.end()) {
      return Error{"reference " + m[0].str() + ": write ${steps.NODE.KEY} with an upstream node", ErrorKind::InvalidArgument};
    }
    const StepRecord& s = run.steps[i->second];
    auto v = s.result.find(m[3].str());
    if (s.status != StepStatus::Succeeded || v == s.result.end()) {
      return Error{"reference " + m[0].str() + ": step '" + node + "' has no result '" + m[3].str() + "'",
                   ErrorKind::InvalidArgument};
    }
    out += v->second;
  }
  out.append(begin, value.cend());
  return out;
}

}  // namespace

// ------------------------------------------------------------------ records' words

const char* toString(RunStatus s) {
  switch (s) {
    case RunStatus::Pending: return "pending";
    case RunStatus::Running: return "running";
    case RunStatus::Succeeded: return "succeeded";
    case RunStatus::Failed: return "failed";
    case RunStatus::Cancelled: return "cancelled";
  }
  return "unknown";
}

const char* toString(StepStatus s) {
  switch (s) {
    case StepStatus::Pending: return "pending";
    case StepStatus::Running: return "running";
    case StepStatus::Succeeded: return "succeeded";
    case StepStatus::Failed: return "failed";
    case StepStatus::Skipped: return "skipped";
  }
  return "unknown";
}

std::optional<RunStatus> parseRunStatus(const std::string& s) {
  for (auto v : {RunStatus::Pending, RunStatus::Running, RunStatus::Succeeded, RunStatus::Failed, RunStatus::Cancelled}) {
    if (s == toString(v)) return v;
  }
  return std::nullopt;
}

std::optional<StepStatus> parseStepStatus(const std::string& s) {
  for (auto v : {StepStatus::Pending, StepStatus::Running, StepStatus::Succeeded, StepStatus::Failed, StepStatus::Skipped}) {
    if (s == toString(v)) return v;
  }
  return std::nullopt;
}

// ------------------------------------------------------------------ watches

std::deque<RunRecord> RunWatch::next(std::stop_token stop) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, stop, [&] { return !changes_.empty(); });
  std::deque<RunRecord> out;
  out.swap(changes_);
  return out;
}

void RunWatch::push(const RunRecord& r) {
  std::lock_guard lock(mu_);
  changes_.push_back(r);
  cv_.notify_all();
}

// ------------------------------------------------------------------ the engine

struct WorkflowEngine::Live {
  RunRecord rec;  // steps in the spec's node order
  std::shared_ptr<const WorkflowSpec> spec;
  std::map<std::string, std::size_t> index;                       // node -> step
  std::map<std::string, int> waiting;                             // node -> dependencies not succeeded
  std::map<std::string, std::vector<std::string>> dependents;     // node -> direct dependents
  bool halted = false;                                            // no more steps start
  bool cancel_requested = false;
  std::string failure;                                            // the first step failure
};

WorkflowEngine::WorkflowEngine(WorkflowConfig cfg, WorkflowStore& store, TaskEngine& tasks, Clock& clock,
                               EventSink* events, ServicesStarter services)
    : cfg_(cfg), store_(store), tasks_(tasks), clock_(clock), events_(events), services_(std::move(services)) {}

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
  rec.document["created_at"] = rfc3339(rec.created_ms);
  rec.document["updated_at"] = rfc3339(rec.updated_ms);
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
  store_.insertRun(first, [this, live = std::shared_ptr<Live>(std::move(live)), done, workflow_id,
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
      emitLocked("workflow_started", {{"run_id", run.rec.id}, {"workflow_id", run.rec.workflow_id}}, actions);
      for (const auto& n : run.spec->nodes) {
        if (run.waiting[n.id] == 0) readyLocked(run, n.id, actions);
      }
      settleLocked(run, actions);
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
    emitLocked("workflow_cancelled", {{"run_id", run_id}, {"workflow_id", run.rec.workflow_id}}, actions);
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

// ------------------------------------------------------------------ steps

void WorkflowEngine::readyLocked(Live& run, const std::string& node_id, Actions& out) {
  const std::size_t i = run.index.at(node_id);
  StepRecord& step = run.rec.steps[i];
  if (step.status != StepStatus::Pending || run.halted || stopping_) return;
  const NodeSpec& node = *run.spec->node(node_id);
  step.status = StepStatus::Running;
  step.started_ms = nowMs();
  run.rec.current_step = node_id;
  emitLocked("workflow_step_started", {{"run_id", run.rec.id}, {"step", node_id}, {"type", node.type}}, out);
  if (node.type == "reward" || node.type == "deployment") {
    std::map<std::string, std::string> data{{"run_id", run.rec.id}, {"step", node_id}};
    for (const auto& [k, v] : node.config.items()) data[k] = asText(v);
    emitLocked(node.type == "reward" ? "workflow_reward" : "workflow_deployment", data, out);
    if (!node.config.contains("task")) {
      finishStepLocked(run, node_id, StepStatus::Succeeded, {{"event", node.type}}, "", 1, out);
      return;
    }
    // With a `task`, the step is that task too (the event went out first).
  }
  if (node.type == "training") {
    finishStepLocked(run, node_id, StepStatus::Failed, {},
                     "training steps submit Slurm jobs, and the Slurm submitter is not built yet", 0, out);
    return;
  }
  if (node.type == "services") {
    std::vector<std::string> names;
    for (const auto& s : node.config["services"]) names.push_back(s.get<std::string>());
    step.attempts = 1;
    persistStepLocked(run, i, [this, run_id = run.rec.id, node_id, names] {
      const bool queued = blocking_.run([this, run_id, node_id, names] {
        Status s = services_ ? services_(names, stop_.get_token())
                             : Status(Error{"no env-manager link is configured", ErrorKind::FailedPrecondition});
        Actions actions;
        {
          std::lock_guard lock(mu_);
          auto it = live_.find(run_id);
          if (it == live_.end()) return;
          finishStepLocked(*it->second, node_id, s.ok() ? StepStatus::Succeeded : StepStatus::Failed,
                           s.ok() ? Payload{{"services", "up"}} : Payload{}, s.ok() ? "" : s.error(), 1, actions);
        }
        perform(actions);
      });
      if (!queued) spdlog::error("run {}: step {} could not be queued", run_id, node_id);
    }, out);
    return;
  }
  // A task: its payload with references resolved, its class, the step's retry and timeout.
  SubmitRequest req;
  req.cls = classOf(node);
  if (req.cls == "gpu_slurm") {
    finishStepLocked(run, node_id, StepStatus::Failed, {},
                     "execution_domain '" + node.config.value("execution_domain", std::string()) +
                         "' runs on Slurm (class gpu_slurm), and the Slurm submitter is not built yet",
                     0, out);
    return;
  }
  for (const auto& [k, v] : payloadOf(node)) {
    auto value = resolve(v, run.rec, run.index);
    if (!value) {
      finishStepLocked(run, node_id, StepStatus::Failed, {}, "payload '" + k + "': " + value.error(), 0, out);
      return;
    }
    req.payload[k] = std::move(value).value();
  }
  const auto timeout = node.timeout.value_or(run.spec->default_timeout);
  if (!req.payload.count("timeout_seconds")) req.payload["timeout_seconds"] = std::to_string(timeout.count());
  req.retry = node.retry.value_or(run.spec->default_retry);
  req.id = run.rec.id + "." + node_id;
  req.workflow_id = run.rec.workflow_id;
  step.task_id = req.id;
  task_steps_[req.id] = {run.rec.id, node_id};
  // Durable "running" first, then the task: a crash in between finds the step running
  // and submits the same task (same id, same request) again.
  persistStepLocked(run, i, [this, req = std::move(req), run_id = run.rec.id, node_id]() mutable {
    tasks_.submit(std::move(req), [this, run_id, node_id](Result<std::string> r) {
      if (r.ok()) return;
      Actions actions;
      {
        std::lock_guard lock(mu_);
        auto it = live_.find(run_id);
        if (it == live_.end()) return;
        finishStepLocked(*it->second, node_id, StepStatus::Failed, {}, "the task was not accepted: " + r.error(), 0,
                         actions);
      }
      perform(actions);
    });
  }, out);
  publishLocked(run, out);
}

void WorkflowEngine::onTask(const TaskRecord& t) {
  if (!isTerminal(t.status) && t.status != TaskStatus::Running) return;
  Actions actions;
  {
    std::lock_guard lock(mu_);
    auto ts = task_steps_.find(t.id);
    if (ts == task_steps_.end()) return;
    auto it = live_.find(ts->second.first);
    if (it == live_.end()) return;
    Live& run = *it->second;
    const std::string node_id = ts->second.second;
    StepRecord& step = run.rec.steps[run.index.at(node_id)];
    if (step.status != StepStatus::Running) return;
    if (t.status == TaskStatus::Running) {
      step.attempts = t.attempts;
      run.rec.current_step = node_id;
      publishLocked(run, actions);
    } else {
      task_steps_.erase(ts);
      const StepStatus st = t.status == TaskStatus::Completed ? StepStatus::Succeeded : StepStatus::Failed;
      std::string error = t.error;
      if (t.status == TaskStatus::Cancelled) error = run.cancel_requested ? "cancelled with the run" : "cancelled: " + t.error;
      finishStepLocked(run, node_id, st, t.result, st == StepStatus::Succeeded ? "" : error, t.attempts, actions);
    }
  }
  perform(actions);
}

void WorkflowEngine::finishStepLocked(Live& run, const std::string& node_id, StepStatus status, const Payload& result,
                                      const std::string& error, int attempts, Actions& out) {
  const std::size_t i = run.index.at(node_id);
  StepRecord& step = run.rec.steps[i];
  step.status = status;
  step.result = result;
  step.error = error;
  step.attempts = std::max(step.attempts, attempts);
  step.finished_ms = nowMs();
  run.rec.current_step = node_id;
  persistStepLocked(run, i, nullptr, out);
  emitLocked(status == StepStatus::Succeeded ? "workflow_step_completed" : "workflow_step_failed",
             {{"run_id", run.rec.id}, {"step", node_id}, {"status", toString(status)}, {"error", error}}, out);
  if (status == StepStatus::Succeeded) {
    for (const auto& d : run.dependents[node_id]) {
      if (--run.waiting[d] == 0) readyLocked(run, d, out);
    }
  } else {
    if (run.failure.empty() && !run.cancel_requested) run.failure = "step '" + node_id + "' failed: " + error;
    // What can no longer run: every pending step downstream; with the stop policy,
    // every pending step, and the running ones are cancelled.
    const bool stop_all = run.spec->failure_policy == FailurePolicy::Stop || run.cancel_requested;
    std::vector<std::string> todo = run.dependents[node_id];
    if (stop_all) {
      run.halted = true;
      todo.clear();
      for (const auto& s : run.rec.steps) {
        if (s.status == StepStatus::Pending) todo.push_back(s.node_id);
        if (s.status == StepStatus::Running && !s.task_id.empty() && !run.cancel_requested) {
          out.push_back([this, id = s.task_id] { (void)tasks_.cancel(id); });
        }
      }
    }
    while (!todo.empty()) {
      const std::string n = todo.back();
      todo.pop_back();
      const std::size_t j = run.index.at(n);
      StepRecord& s = run.rec.steps[j];
      if (s.status != StepStatus::Pending) continue;
      s.status = StepStatus::Skipped;
      s.error = "not run: step '" + node_id + "' " + (status == StepStatus::Failed ? "failed" : "ended");
      s.finished_ms = step.finished_ms;
      persistStepLocked(run, j, nullptr, out);
      for (const auto& d : run.dependents[n]) todo.push_back(d);
    }
  }
  settleLocked(run, out);
}

void WorkflowEngine::settleLocked(Live& run, Actions& out) {
  const bool all_done = std::all_of(run.rec.steps.begin(), run.rec.steps.end(),
                                    [](const StepRecord& s) { return isTerminal(s.status); });
  if (!all_done) {
    publishLocked(run, out);
    return;
  }
  const bool failed = std::any_of(run.rec.steps.begin(), run.rec.steps.end(),
                                  [](const StepRecord& s) { return s.status == StepStatus::Failed; });
  run.rec.status = run.cancel_requested ? RunStatus::Cancelled : failed ? RunStatus::Failed : RunStatus::Succeeded;
  run.rec.error = run.cancel_requested ? "cancelled" : run.failure;
  run.rec.finished_ms = run.rec.updated_ms = nowMs();
  const RunRecord final_rec = run.rec;
  ending_[final_rec.id] = final_rec;  // what getRun answers until the store has it
  out.push_back([this, final_rec] {
    store_.updateRun(final_rec, [this, id = final_rec.id](Status s) {
      if (!s.ok()) spdlog::error("workflow run {}: could not record its end: {}", id, s.error());
      std::lock_guard lock(mu_);
      ending_.erase(id);
    });
  });
  if (run.rec.status == RunStatus::Succeeded) {
    emitLocked("workflow_completed", {{"run_id", run.rec.id}, {"workflow_id", run.rec.workflow_id}}, out);
  } else if (run.rec.status == RunStatus::Failed) {
    emitLocked("workflow_failed", {{"run_id", run.rec.id}, {"workflow_id", run.rec.workflow_id}, {"error", run.rec.error}},
               out);
  }
  publishLocked(run, out);
  watches_.erase(run.rec.id);
  live_.erase(run.rec.id);  // `run` is gone after this line
}

void WorkflowEngine::persistStepLocked(Live& run, std::size_t index, std::function<void()> then, Actions& out) {
  run.rec.updated_ms = nowMs();
  out.push_back([this, step = run.rec.steps[index], then = std::move(then)] {
    store_.putStep(step, [step, then](Status s) {
      if (!s.ok()) spdlog::error("workflow run {}: could not record step {}: {}", step.run_id, step.node_id, s.error());
      if (then) then();
    });
  });
}

void WorkflowEngine::publishLocked(const Live& run, Actions& out) {
  auto it = watches_.find(run.rec.id);
  if (it == watches_.end() || it->second.empty()) return;
  out.push_back([watchers = std::vector<std::shared_ptr<RunWatch>>(it->second.begin(), it->second.end()),
                 rec = run.rec] {
    for (const auto& w : watchers) w->push(rec);
  });
}

void WorkflowEngine::emitLocked(const std::string& type, std::map<std::string, std::string> data, Actions& out) {
  if (events_ == nullptr) return;
  out.push_back([this, type, data = std::move(data)] { events_->emit(type, data); });
}

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
      store_.updateRun(rec, nullptr);
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
