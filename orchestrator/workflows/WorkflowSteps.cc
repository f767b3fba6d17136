// What a step does when it becomes ready, what its end means for the run (dependents,
// failure policies, the run's own end), and how changes reach the store, the watchers
// and the event sink.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <regex>

#include "orchestrator/workflows/LiveRun.h"
#include "orchestrator/workflows/WorkflowEngine.h"

namespace dspy::orchestrator {
namespace {

using json = nlohmann::json;

std::string asText(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// The task class a signature or verifier node runs under.
std::string classOf(const NodeSpec& n) {
  if (n.type == "task" || n.type == "custom") return n.config.value("class", std::string("cpu_short"));
  // Training runs as a Slurm job (its template: `template`, else `slurm_profile`, else rl).
  if (n.type == "training") return n.config.value("class", std::string("gpu_slurm"));
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
  if (n.type == "training") {
    p.erase("class");
    if (!p.count("template")) p["template"] = p.count("slurm_profile") ? p["slurm_profile"] : std::string("rl");
  }
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

// ------------------------------------------------------------------ steps

void WorkflowEngine::readyLocked(Live& run, const std::string& node_id, Actions& out) {
  const std::size_t i = run.index.at(node_id);
  StepRecord& step = run.rec.steps[i];
  if (step.status != StepStatus::Pending || run.halted || run.ended || stopping_) return;
  const NodeSpec& node = *run.spec->node(node_id);
  step.status = StepStatus::Running;
  step.started_ms = nowMs();
  run.rec.current_step = node_id;
  emitLocked(run, "workflow_step_started", {{"run_id", run.rec.id}, {"step", node_id}, {"type", node.type}});
  if (node.type == "reward" || node.type == "deployment") {
    std::map<std::string, std::string> data{{"run_id", run.rec.id}, {"step", node_id}};
    for (const auto& [k, v] : node.config.items()) data[k] = asText(v);
    emitLocked(run, node.type == "reward" ? "workflow_reward" : "workflow_deployment", data);
    if (!node.config.contains("task")) {
      finishStepLocked(run, node_id, StepStatus::Succeeded, {{"event", node.type}}, "", 1, out);
      return;
    }
    // With a `task`, the step is that task too (the event went out first).
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
    // A cancel of the run may come between the step's "running" and the task's
    // submission, when the task does not exist yet for it to cancel: look before and
    // after submitting (a task whose insert is still in flight takes a cancel).
    auto cancelled = [this, &run_id] {
      std::lock_guard lock(mu_);
      auto it = live_.find(run_id);
      return it == live_.end() || it->second->cancel_requested;
    };
    if (cancelled()) {
      Actions actions;
      {
        std::lock_guard lock(mu_);
        auto it = live_.find(run_id);
        if (it == live_.end()) return;
        finishStepLocked(*it->second, node_id, StepStatus::Failed, {}, "cancelled with the run", 0, actions);
      }
      perform(actions);
      return;
    }
    const std::string task_id = req.id;
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
    if (cancelled()) (void)tasks_.cancel(task_id);
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
  if (run.ended) return;
  const std::size_t i = run.index.at(node_id);
  StepRecord& step = run.rec.steps[i];
  step.status = status;
  step.result = result;
  step.error = error;
  step.attempts = std::max(step.attempts, attempts);
  step.finished_ms = nowMs();
  run.rec.current_step = node_id;
  emitLocked(run, status == StepStatus::Succeeded ? "workflow_step_completed" : "workflow_step_failed",
             {{"run_id", run.rec.id}, {"step", node_id}, {"status", toString(status)}, {"error", error}});
  persistStepLocked(run, i, nullptr, out);
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
  if (run.ended) return;
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
  if (run.rec.status == RunStatus::Succeeded) {
    emitLocked(run, "workflow_completed", {{"run_id", run.rec.id}, {"workflow_id", run.rec.workflow_id}});
  } else if (run.rec.status == RunStatus::Failed) {
    emitLocked(run, "workflow_failed",
               {{"run_id", run.rec.id}, {"workflow_id", run.rec.workflow_id}, {"error", run.rec.error}});
  }
  const RunRecord final_rec = run.rec;
  ending_[final_rec.id] = final_rec;  // what getRun answers until the store has it
  out.push_back([this, final_rec, events = std::move(run.events)]() mutable {
    store_.updateRun(final_rec, std::move(events), [this, id = final_rec.id](Status s) {
      if (!s.ok()) spdlog::error("workflow run {}: could not record its end: {}", id, s.error());
      std::lock_guard lock(mu_);
      ending_.erase(id);
    });
  });
  publishLocked(run, out);
  watches_.erase(run.rec.id);
  run.ended = true;
  auto it = live_.find(run.rec.id);
  ended_.push_back(std::move(it->second));  // `run` stays valid until perform()
  live_.erase(it);
}

void WorkflowEngine::persistStepLocked(Live& run, std::size_t index, std::function<void()> then, Actions& out) {
  run.rec.updated_ms = nowMs();
  out.push_back([this, step = run.rec.steps[index], then = std::move(then), events = std::move(run.events)]() mutable {
    store_.putStep(step, std::move(events), [step, then](Status s) {
      if (!s.ok()) spdlog::error("workflow run {}: could not record step {}: {}", step.run_id, step.node_id, s.error());
      if (then) then();
    });
  });
  run.events.clear();
}

void WorkflowEngine::publishLocked(const Live& run, Actions& out) {
  auto it = watches_.find(run.rec.id);
  if (it == watches_.end() || it->second.empty()) return;
  out.push_back([watchers = std::vector<std::shared_ptr<RunWatch>>(it->second.begin(), it->second.end()),
                 rec = run.rec] {
    for (const auto& w : watchers) w->push(rec);
  });
}

void WorkflowEngine::emitLocked(Live& run, const std::string& type, Payload data) {
  run.events.push_back(makeEvent(type, std::move(data)));
}

void WorkflowEngine::flushEventsLocked(Live& run, Actions& out) {
  if (run.events.empty()) return;
  out.push_back([this, events = std::move(run.events)]() mutable {
    store_.appendEvents(std::move(events), [](Status s) {
      if (!s.ok()) spdlog::error("workflow events could not be stored: {}", s.error());
    });
  });
  run.events.clear();
}

}  // namespace dspy::orchestrator
