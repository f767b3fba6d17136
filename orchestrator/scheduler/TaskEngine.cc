// The task engine: submission, queues, dispatch, completion, retries, cancellation,
// recovery, watchers.
#include "orchestrator/scheduler/TaskEngine.h"

#include "common/Text.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace dspy::orchestrator {
namespace {

const prometheus::Histogram::BucketBoundaries kLatencyBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                              0.25,   0.5,   1,      2.5,   5,    10,    30,    60,
                                                              300,    900,   3600};

}  // namespace

TaskEngine::TaskEngine(EngineConfig cfg, TaskStore& store, Executors executors, Clock& clock, Metrics* metrics)
    : cfg_(std::move(cfg)), store_(store), clock_(clock), metrics_(metrics) {
  prometheus::Family<prometheus::Gauge>* limit = nullptr;
  prometheus::Family<prometheus::Gauge>* inflight = nullptr;
  prometheus::Family<prometheus::Gauge>* depth = nullptr;
  prometheus::Family<prometheus::Counter>*submitted = nullptr, *processed = nullptr, *completed = nullptr,
  *failed = nullptr, *cancelled = nullptr, *retries = nullptr;
  prometheus::Family<prometheus::Histogram>*duration = nullptr, *dispatch = nullptr;
  if (metrics_ != nullptr) {
    auto& r = metrics_->registry();
    limit = &prometheus::BuildGauge().Name("orchestrator_concurrency_limit").Help("Concurrency limit per task class").Register(r);
    inflight = &prometheus::BuildGauge().Name("orchestrator_inflight_tasks").Help("Tasks running per class").Register(r);
    depth = &prometheus::BuildGauge().Name("queue_depth").Help("Tasks waiting to run per class (including retry waits)").Register(r);
    env_queue_depth_ = &prometheus::BuildGauge().Name("env_queue_depth").Help("Tasks waiting to run, all classes").Register(r).Add({});
    submitted = &prometheus::BuildCounter().Name("queue_tasks_submitted_total").Help("Tasks accepted").Register(r);
    processed = &prometheus::BuildCounter().Name("queue_tasks_processed_total").Help("Task attempts that ended").Register(r);
    completed = &prometheus::BuildCounter().Name("queue_tasks_completed_total").Help("Tasks that completed successfully").Register(r);
    failed = &prometheus::BuildCounter().Name("orchestrator_tasks_failed_total").Help("Tasks that failed for good").Register(r);
    cancelled = &prometheus::BuildCounter().Name("orchestrator_tasks_cancelled_total").Help("Tasks cancelled").Register(r);
    retries = &prometheus::BuildCounter().Name("orchestrator_task_retries_total").Help("Attempts scheduled again after a failure").Register(r);
    rejected_family_ = &prometheus::BuildCounter().Name("orchestrator_tasks_rejected_total").Help("Submissions refused, by reason").Register(r);
    duration = &prometheus::BuildHistogram().Name("orchestrator_task_duration_seconds").Help("Attempt latency per class").Register(r);
    dispatch = &prometheus::BuildHistogram().Name("orchestrator_task_dispatch_seconds").Help("From queued to started per class").Register(r);
  }
  for (auto& [name, cc] : cfg_.classes) {
    ClassState cs;
    cs.cfg = cc;
    auto ex = executors.find(name);
    cs.executor = ex == executors.end() ? nullptr : ex->second;
    cs.limiter = makeLimiter(cc.limiter, clock_);
    if (metrics_ != nullptr) {
      const std::map<std::string, std::string> l{{"class", name}};
      cs.limit_gauge = &limit->Add(l);
      cs.inflight_gauge = &inflight->Add(l);
      cs.depth_gauge = &depth->Add(l);
      cs.submitted = &submitted->Add(l);
      cs.processed = &processed->Add(l);
      cs.completed = &completed->Add(l);
      cs.failed = &failed->Add(l);
      cs.cancelled = &cancelled->Add(l);
      cs.retries = &retries->Add(l);
      cs.duration = &duration->Add(l, kLatencyBuckets);
      cs.dispatch = &dispatch->Add(l, kLatencyBuckets);
    }
    classes_.emplace(name, std::move(cs));
  }
  if (metrics_ != nullptr) metrics_->addScrapeHook([this] { updateGauges(); });
}

TaskEngine::~TaskEngine() { stop(); }

void TaskEngine::updateGauges() {
  std::lock_guard lock(mu_);
  double total = 0;
  for (auto& [name, cs] : classes_) {
    if (cs.limit_gauge == nullptr) continue;
    cs.limit_gauge->Set(cs.limiter->limit());
    cs.inflight_gauge->Set(cs.inflight);
    const double depth = static_cast<double>(cs.queue.size()) + cs.waiting_retry;
    cs.depth_gauge->Set(depth);
    total += depth;
  }
  if (env_queue_depth_ != nullptr) env_queue_depth_->Set(total);
}

void TaskEngine::rejected(const std::string& cls, const std::string& reason) {
  if (rejected_family_ != nullptr) rejected_family_->Add({{"class", cls}, {"reason", reason}}).Increment();
}

Status TaskEngine::recover() {
  auto max = store_.maxSeq();
  if (!max) return max.fullError();
  auto counts = store_.countByStatus();
  if (!counts) return counts.fullError();
  auto rows = store_.unfinished();
  if (!rows) return rows.fullError();
  std::lock_guard lock(mu_);
  seq_ = max.value();
  for (const auto& [st, n] : counts.value()) {
    totals_.submitted += n;
    if (st == TaskStatus::Completed) totals_.completed += n;
    if (st == TaskStatus::Failed) totals_.failed += n;
    if (st == TaskStatus::Cancelled) totals_.cancelled += n;
  }
  int requeued = 0, retried = 0, failed = 0;
  for (auto& rec : rows.value()) {
    Entry& e = tasks_[rec.id];
    e.rec = std::move(rec);
    e.accepted = true;
    auto cs = classes_.find(runsUnder(e.rec.cls));
    if (cs == classes_.end()) {
      e.rec.status = TaskStatus::Failed;
      e.rec.error = "class '" + e.rec.cls + "' is no longer configured";
      e.rec.finished_ms = unixMillis();
      ++failed;
      persistLocked(e);
      continue;
    }
    if (e.rec.status == TaskStatus::Running) {
      // The process died while this attempt ran: that attempt counts as failed.
      if (e.rec.attempts < cs->second.cfg.retry.max_attempts) {
        e.rec.status = TaskStatus::Pending;
        e.rec.error = "attempt " + std::to_string(e.rec.attempts) + " was interrupted by an orchestrator restart";
        e.rec.not_before_ms = unixMillis() + retryDelay(cs->second.cfg.retry, e.rec.attempts + 1).count();
        ++retried;
      } else {
        e.rec.status = TaskStatus::Failed;
        e.rec.error = "the orchestrator stopped while attempt " + std::to_string(e.rec.attempts) +
                      " ran, and no attempts are left";
        e.rec.finished_ms = unixMillis();
        ++failed;
      }
      persistLocked(e);
      if (e.rec.status == TaskStatus::Failed) continue;
    } else {
      ++requeued;
    }
    enqueueLocked(e);
  }
  if (requeued + retried + failed > 0) {
    spdlog::info("recovered {} queued task(s); {} interrupted task(s) will be retried, {} failed", requeued, retried,
                 failed);
  }
  return Status::Ok();
}

void TaskEngine::start() {
  {
    std::lock_guard lock(mu_);
    if (started_) return;
    started_ = true;
    for (auto& [name, cs] : classes_) dispatchLocked(cs);
  }
  timer_ = std::jthread([this](std::stop_token st) { timerLoop(st); });
}

void TaskEngine::stop() {
  {
    std::unique_lock lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, e] : tasks_) {
      if (e.rec.status == TaskStatus::Running) {
        e.interrupted = true;
        e.cancel.request_stop();
      }
    }
    threads_cv_.wait(lock, [this] { return running_threads_ == 0; });
  }
  if (timer_.joinable()) {
    timer_.request_stop();
    timer_cv_.notify_all();
    timer_.join();
  }
  store_.flush();
  std::lock_guard lock(watch_mu_);
  watches_.clear();
}

const std::string& TaskEngine::runsUnder(const std::string& cls) const {
  static const std::string kNone;
  if (classes_.count(cls)) return cls;
  if (!cfg_.default_class.empty() && classes_.count(cfg_.default_class)) return cfg_.default_class;
  return kNone;
}

Status TaskEngine::validateRequest(SubmitRequest& req, Payload* expanded) const {
  if (req.cls.empty()) req.cls = "cpu_short";
  if (Status s = validateTaskId(req.cls); !s.ok() || req.cls.size() > 64) {
    return Error{"bad task class '" + req.cls + "': 1-64 characters of [A-Za-z0-9._:-]", ErrorKind::InvalidArgument};
  }
  auto cs = classes_.find(runsUnder(req.cls));
  if (cs == classes_.end()) {
    std::string known;
    for (const auto& [k, v] : classes_) known += (known.empty() ? "" : ", ") + k;
    return Error{"unknown task class '" + req.cls + "' (configured: " + known +
                     "; set tasks.default_class to run unknown classes under one of them)",
                 ErrorKind::InvalidArgument};
  }
  if (req.id.empty()) {
    req.id = generateTaskId();
  } else if (Status s = validateTaskId(req.id); !s.ok()) {
    return s;
  }
  std::size_t bytes = 0;
  for (const auto& [k, v] : req.payload) bytes += k.size() + v.size();
  std::int64_t max_bytes = 0;
  {
    std::lock_guard lock(mu_);  // a reload may change it
    max_bytes = cfg_.max_payload_bytes;
  }
  if (bytes > static_cast<std::size_t>(max_bytes)) {
    return Error{"payload is " + std::to_string(bytes) + " bytes, over the limit of " + std::to_string(max_bytes) +
                     " (tasks.max_payload_bytes)",
                 ErrorKind::InvalidArgument};
  }
  auto p = expandPayload(req.payload);
  if (!p) return p.fullError();
  if (auto t = p.value().find("timeout_seconds"); t != p.value().end()) {
    if (!parseInt(t->second, 1)) {
      return Error{"payload timeout_seconds must be a positive integer, got '" + t->second + "'",
                   ErrorKind::InvalidArgument};
    }
  }
  if (!cs->second.executor) {
    return Error{"class '" + req.cls + "' has no executor", ErrorKind::FailedPrecondition};
  }
  if (Status s = cs->second.executor->validate(p.value()); !s.ok()) {
    return Error{"class '" + req.cls + "' (" + cs->second.executor->kind() + " executor): " + s.error(), s.kind()};
  }
  *expanded = std::move(p.value());
  return Status::Ok();
}

void TaskEngine::submit(SubmitRequest req, SubmitDone done) {
  Payload expanded;
  if (Status s = validateRequest(req, &expanded); !s.ok()) {
    const std::string& under = runsUnder(req.cls);
    rejected(under.empty() ? "unknown" : under, "invalid");
    done(s.fullError());
    return;
  }
  const std::string hash = requestHash(req.cls, req.payload, req.priority, req.workflow_id);
  TaskRecord rec;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      done(Error{"the orchestrator is shutting down", ErrorKind::Unavailable});
      return;
    }
    auto it = tasks_.find(req.id);
    if (it != tasks_.end()) {
      if (it->second.rec.request_hash != hash) {
        rejected(runsUnder(req.cls), "duplicate");
        done(Error{"task id '" + req.id + "' is taken by a different request", ErrorKind::AlreadyExists});
      } else if (!it->second.accepted) {
        it->second.waiters.push_back(std::move(done));
      } else {
        done(req.id);
      }
      return;
    }
    ClassState& cs = classes_.at(runsUnder(req.cls));
    if (static_cast<int>(cs.queue.size()) + cs.waiting_retry >= cs.cfg.max_queued) {
      rejected(runsUnder(req.cls), "queue_full");
      done(Error{"class '" + req.cls + "' has " + std::to_string(cs.cfg.max_queued) +
                     " tasks waiting (max_queued); retry later",
                 ErrorKind::Unavailable});
      return;
    }
    Entry& e = tasks_[req.id];
    e.rec.seq = ++seq_;
    e.rec.id = req.id;
    e.rec.cls = req.cls;
    e.rec.payload = std::move(req.payload);
    e.rec.priority = req.priority;
    e.rec.workflow_id = req.workflow_id;
    e.rec.request_hash = hash;
    e.rec.submitted_ms = unixMillis();
    e.waiters.push_back(std::move(done));
    rec = e.rec;
  }
  const std::string id = rec.id;
  store_.insert(rec, [this, id](Status s) { onInserted(id, s); });
}

void TaskEngine::onInserted(const std::string& id, Status s) {
  std::vector<SubmitDone> waiters;
  TaskRecord rec;
  std::string cls;
  {
    std::lock_guard lock(mu_);
    auto it = tasks_.find(id);
    if (it == tasks_.end()) return;
    waiters.swap(it->second.waiters);
    cls = it->second.rec.cls;
    if (s.ok()) {
      it->second.accepted = true;
      ++totals_.submitted;
      auto& cs = classes_.at(runsUnder(cls));
      if (cs.submitted) cs.submitted->Increment();
      rec = it->second.rec;
      enqueueLocked(it->second);
    } else {
      rec = it->second.rec;
      tasks_.erase(it);
    }
  }
  if (s.ok()) {
    notify(rec);
    for (auto& w : waiters) w(id);
    return;
  }
  if (s.kind() == ErrorKind::AlreadyExists) {
    // Taken by a task that is no longer in memory: the same request again is fine.
    auto stored = store_.get(id);
    const bool same = stored && stored.value() && stored.value()->request_hash == rec.request_hash;
    if (!same) rejected(cls, "duplicate");
    for (auto& w : waiters) {
      if (same) {
        w(id);
      } else {
        w(Error{"task id '" + id + "' is taken by a different request", ErrorKind::AlreadyExists});
      }
    }
    return;
  }
  rejected(cls, "store");
  for (auto& w : waiters) w(s.fullError());
}

void TaskEngine::enqueueLocked(Entry& e) {
  ClassState& cs = classes_.at(runsUnder(e.rec.cls));
  if (e.rec.not_before_ms > unixMillis()) {
    ++cs.waiting_retry;
    retry_at_.emplace(e.rec.not_before_ms, e.rec.id);
    timer_cv_.notify_all();
    return;
  }
  e.queued_at = clock_.monotonicTime();
  cs.queue.emplace(QueueKey{-e.rec.priority, e.rec.seq}, e.rec.id);
  dispatchLocked(cs);
}

void TaskEngine::dispatchLocked(ClassState& cs) {
  if (!started_ || stopping_) return;
  while (!cs.queue.empty() && cs.inflight < cs.limiter->limit()) {
    auto node = cs.queue.extract(cs.queue.begin());
    Entry& e = tasks_.at(node.mapped());
    e.rec.status = TaskStatus::Running;
    e.rec.attempts += 1;
    e.rec.started_ms = unixMillis();
    e.rec.not_before_ms = 0;
    e.started_at = clock_.monotonicTime();
    e.cancel = std::stop_source();
    ++cs.inflight;
    cs.limiter->onStart(cs.inflight);
    const double waited = std::chrono::duration<double>(e.started_at - e.queued_at).count();
    if (cs.dispatch) cs.dispatch->Observe(waited);
    cs.recent_waits.add(e.started_at, waited);
    ExecRequest req;
    req.task_id = e.rec.id;
    req.cls = e.rec.cls;
    req.payload = expandPayload(e.rec.payload).value();  // validated at submission
    req.attempt = e.rec.attempts;
    req.timeout = cs.cfg.timeout;
    if (auto t = req.payload.find("timeout_seconds"); t != req.payload.end()) {
      // Validated at submission: a positive integer; capped so that seconds * 1000 fits.
      const auto secs = parseInt(t->second, 1, INT64_MAX / 1000).value_or(INT64_MAX / 1000);
      req.timeout = std::min(req.timeout, std::chrono::milliseconds(secs * 1000));
    }
    ++running_threads_;
    // The attempt starts only once "running, attempt N" is durable: a crash can then
    // never run a task again without counting the attempt.
    persistLocked(e, [this, id = e.rec.id, r = std::move(req), ex = cs.executor,
                      token = e.cancel.get_token()]() mutable {
      pool_.run([this, id = std::move(id), r = std::move(r), ex = std::move(ex), token]() mutable {
        runAttempt(std::move(id), std::move(r), std::move(ex), token);
      });
    });
  }
}

void TaskEngine::runAttempt(std::string id, ExecRequest req, std::shared_ptr<Executor> ex, std::stop_token cancel) {
  const auto started = clock_.monotonicTime();
  ExecOutcome outcome;
  try {
    outcome = ex->execute(req, cancel);
  } catch (const std::exception& err) {
    outcome = ExecOutcome::failure(std::string("executor error: ") + err.what(), true);
  }
  finishAttempt(id, std::move(outcome), clock_.monotonicTime() - started, started);
  std::lock_guard lock(mu_);
  if (--running_threads_ == 0) threads_cv_.notify_all();
}

void TaskEngine::finishAttempt(const std::string& id, ExecOutcome outcome, std::chrono::nanoseconds latency,
                               Clock::MonotonicTime started) {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  Entry& e = it->second;
  ClassState& cs = classes_.at(runsUnder(e.rec.cls));
  --cs.inflight;
  ++totals_.processed;
  if (cs.processed) cs.processed->Increment();
  if (cs.duration) cs.duration->Observe(std::chrono::duration<double>(latency).count());
  const int queued = static_cast<int>(cs.queue.size());
  if (!e.interrupted && !e.cancel_requested) {
    cs.limiter->onSample(LimiterSample{started, latency, !outcome.success}, cs.inflight, queued);
    cs.recent_outcomes.add(clock_.monotonicTime(), outcome.success ? 0.0 : 1.0);
  }
  e.rec.result = std::move(outcome.result);
  e.rec.result["attempt"] = std::to_string(e.rec.attempts);
  if (e.interrupted) {
    // Our own shutdown stopped it: not the task's fault, so the attempt is given back.
    e.rec.status = TaskStatus::Pending;
    e.rec.attempts -= 1;
    e.rec.error = "interrupted by an orchestrator shutdown; will run again";
  } else if (e.cancel_requested) {
    e.rec.status = TaskStatus::Cancelled;
    e.rec.error = "cancelled while running";
  } else if (outcome.success) {
    e.rec.status = TaskStatus::Completed;
    e.rec.error.clear();
  } else if (outcome.retryable && e.rec.attempts < cs.cfg.retry.max_attempts) {
    e.rec.status = TaskStatus::Pending;
    e.rec.error = "attempt " + std::to_string(e.rec.attempts) + " failed: " + outcome.error;
    e.rec.not_before_ms = unixMillis() + retryDelay(cs.cfg.retry, e.rec.attempts + 1).count();
    if (cs.retries) cs.retries->Increment();
  } else {
    e.rec.status = TaskStatus::Failed;
    e.rec.error = outcome.error;
  }
  if (isTerminal(e.rec.status)) e.rec.finished_ms = unixMillis();
  persistLocked(e);
  if (e.rec.status == TaskStatus::Pending && !e.interrupted) enqueueLocked(e);
  dispatchLocked(cs);
}

void TaskEngine::persistLocked(Entry& e, std::function<void()> then) {
  if (isTerminal(e.rec.status)) {
    auto& cs = classes_.at(runsUnder(e.rec.cls));
    if (e.rec.status == TaskStatus::Completed) {
      ++totals_.completed;
      if (cs.completed) cs.completed->Increment();
    } else if (e.rec.status == TaskStatus::Failed) {
      ++totals_.failed;
      if (cs.failed) cs.failed->Increment();
    } else {
      ++totals_.cancelled;
      if (cs.cancelled) cs.cancelled->Increment();
    }
  }
  TaskRecord copy = e.rec;
  copy.payload.clear();  // an update does not write the payload, and watchers do not show it
  const bool terminal = isTerminal(copy.status);
  store_.update(copy, [this, copy, terminal, then = std::move(then)](Status s) {
    if (!s.ok()) spdlog::error("task {}: could not record state {}: {}", copy.id, toString(copy.status), s.error());
    notify(copy);
    if (then) then();
    if (terminal) {
      std::lock_guard lock(mu_);
      retireLocked(copy.id);
    }
  });
}

void TaskEngine::retireLocked(const std::string& id) {
  finished_order_.push_back(id);
  while (finished_order_.size() > static_cast<std::size_t>(cfg_.retain_finished)) {
    auto it = tasks_.find(finished_order_.front());
    if (it != tasks_.end() && isTerminal(it->second.rec.status)) tasks_.erase(it);
    finished_order_.pop_front();
  }
}

void TaskEngine::notify(const TaskRecord& rec) {
  std::lock_guard lock(watch_mu_);
  for (auto& w : watches_) {
    if (w->wants(rec.id)) w->push(rec);
  }
}

void TaskEngine::timerLoop(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    const auto now = unixMillis();
    while (!retry_at_.empty() && retry_at_.begin()->first <= now) {
      const std::string id = retry_at_.begin()->second;
      retry_at_.erase(retry_at_.begin());
      auto it = tasks_.find(id);
      if (it == tasks_.end() || it->second.rec.status != TaskStatus::Pending) continue;
      auto& cs = classes_.at(runsUnder(it->second.rec.cls));
      --cs.waiting_retry;
      it->second.rec.not_before_ms = 0;
      enqueueLocked(it->second);
    }
    if (retry_at_.empty()) {
      timer_cv_.wait(lock, [&] { return stop.stop_requested() || !retry_at_.empty(); });
    } else {
      const auto when = std::chrono::system_clock::time_point(std::chrono::milliseconds(retry_at_.begin()->first));
      timer_cv_.wait_until(lock, when);
    }
  }
}

Result<TaskRecord> TaskEngine::get(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    auto it = tasks_.find(id);
    if (it != tasks_.end() && it->second.accepted) return it->second.rec;
  }
  auto stored = store_.get(id);
  if (!stored) return stored.fullError();
  if (!stored.value()) return Error{"no task with id '" + id + "'", ErrorKind::NotFound};
  return *stored.value();
}

Status TaskEngine::cancel(const std::string& id) {
  std::unique_lock lock(mu_);
  auto it = tasks_.find(id);
  if (it == tasks_.end() || !it->second.accepted) {
    lock.unlock();
    auto t = get(id);
    if (!t) return t.fullError();
    return Error{"task '" + id + "' already finished (" + toString(t.value().status) + ")",
                 ErrorKind::FailedPrecondition};
  }
  Entry& e = it->second;
  ClassState& cs = classes_.at(runsUnder(e.rec.cls));
  switch (e.rec.status) {
    case TaskStatus::Pending: {
      if (cs.queue.erase(QueueKey{-e.rec.priority, e.rec.seq}) == 0) {
        for (auto r = retry_at_.begin(); r != retry_at_.end(); ++r) {
          if (r->second == id) {
            retry_at_.erase(r);
            --cs.waiting_retry;
            break;
          }
        }
      }
      e.rec.status = TaskStatus::Cancelled;
      e.rec.error = "cancelled before it ran";
      e.rec.finished_ms = unixMillis();
      persistLocked(e);
      return Status::Ok();
    }
    case TaskStatus::Running:
      e.cancel_requested = true;
      e.cancel.request_stop();
      return Status::Ok();
    default:
      return Error{"task '" + id + "' already finished (" + toString(e.rec.status) + ")",
                   ErrorKind::FailedPrecondition};
  }
}

Result<std::vector<TaskRecord>> TaskEngine::list(const TaskFilter& filter) {
  // Settle what was accepted so far, so that the list agrees with what clients heard.
  store_.flush();
  return store_.list(filter);
}

std::shared_ptr<TaskWatch> TaskEngine::watch(const std::set<std::string>& ids, bool include_finished,
                                             std::vector<TaskRecord>* snapshot) {
  auto w = std::make_shared<TaskWatch>(ids);
  {
    std::lock_guard lock(watch_mu_);
    watches_.push_back(w);
  }
  std::vector<std::string> missing;
  {
    std::lock_guard lock(mu_);
    if (ids.empty()) {
      std::vector<const Entry*> all;
      for (const auto& [id, e] : tasks_) {
        if (e.accepted && (include_finished || !isTerminal(e.rec.status))) all.push_back(&e);
      }
      std::sort(all.begin(), all.end(), [](const Entry* a, const Entry* b) { return a->rec.seq < b->rec.seq; });
      for (const Entry* e : all) snapshot->push_back(e->rec);
    } else {
      for (const auto& id : ids) {
        auto it = tasks_.find(id);
        if (it != tasks_.end() && it->second.accepted) {
          snapshot->push_back(it->second.rec);
        } else {
          missing.push_back(id);
        }
      }
    }
  }
  for (const auto& id : missing) {
    auto t = store_.get(id);
    if (t && t.value()) snapshot->push_back(*t.value());
  }
  return w;
}

void TaskEngine::unwatch(const std::shared_ptr<TaskWatch>& w) {
  std::lock_guard lock(watch_mu_);
  watches_.remove(w);
}

std::vector<std::string> TaskEngine::reconfigure(const EngineConfig& next) {
  std::vector<std::string> notes;
  std::lock_guard lock(mu_);
  cfg_.max_payload_bytes = next.max_payload_bytes;
  cfg_.retain_finished = next.retain_finished;
  if (next.default_class != cfg_.default_class) {
    notes.push_back("tasks.default_class '" + next.default_class + "' takes effect after a restart (runs '" +
                    cfg_.default_class + "')");
  }
  for (const auto& [name, c] : next.classes) {
    auto it = classes_.find(name);
    if (it == classes_.end()) {
      notes.push_back("class '" + name + "' is new: it takes effect after a restart");
      continue;
    }
    ClassState& cs = it->second;
    if (c.executor != cs.cfg.executor) {
      notes.push_back("class '" + name + "': executor '" + c.executor + "' takes effect after a restart (runs '" +
                      cs.cfg.executor + "')");
      continue;
    }
    if (!sameLimiter(c.limiter, cs.cfg.limiter)) {
      cs.limiter = makeLimiter(c.limiter, clock_);
      notes.push_back("class '" + name + "': limiter now " + c.limiter.kind + " (" + std::to_string(c.limiter.min) +
                      ".." + std::to_string(c.limiter.max) + ", starting at " + std::to_string(cs.limiter->limit()) +
                      ")");
    }
    cs.cfg = c;
    dispatchLocked(cs);  // a higher limit lets waiting tasks start now
  }
  for (const auto& [name, cs] : classes_) {
    if (!next.classes.count(name)) notes.push_back("class '" + name + "' was removed: it stays until a restart");
  }
  return notes;
}

QueueStats TaskEngine::stats() {
  std::lock_guard lock(mu_);
  QueueStats s = totals_;
  s.done = s.completed + s.failed + s.cancelled;
  s.pending = s.submitted - s.done;
  for (auto& [name, cs] : classes_) {
    ClassStats c;
    c.executor = cs.executor ? cs.executor->kind() : "";
    c.limiter = cs.limiter->kind();
    c.limit = cs.limiter->limit();
    c.inflight = cs.inflight;
    c.queued = static_cast<int>(cs.queue.size()) + cs.waiting_retry;
    c.min_latency_ms = std::chrono::duration<double, std::milli>(cs.limiter->minLatency()).count();
    const auto now = clock_.monotonicTime();
    c.recent_starts = static_cast<std::int64_t>(cs.recent_waits.count(now));
    c.recent_wait_seconds_sum = cs.recent_waits.sum(now);
    c.recent_attempts = static_cast<std::int64_t>(cs.recent_outcomes.count(now));
    c.recent_failures = static_cast<std::int64_t>(cs.recent_outcomes.sum(now) + 0.5);
    s.classes[name] = c;
  }
  return s;
}

}  // namespace dspy::orchestrator
