// The task engine's front: construction, submission, recovery, queries, cancel,
// watchers, reload. The work itself (queues, dispatch, attempts, retries) is in
// TaskDispatch.cc.
#include "orchestrator/scheduler/TaskEngine.h"

#include <atomic>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>

#include "common/Text.h"

namespace dspy::orchestrator {
namespace {
EngineObserver& quiet() {
  static EngineObserver none;
  return none;
}
}  // namespace

TaskEngine::TaskEngine(EngineConfig cfg, TaskStore& store, Executors executors, Clock& clock, EngineObserver* observer)
    : cfg_(std::move(cfg)), store_(store), clock_(clock), observer_(observer ? *observer : quiet()) {
  for (auto& [name, cc] : cfg_.classes) {
    ClassState cs;
    cs.name = name;
    cs.cfg = cc;
    auto ex = executors.find(name);
    cs.executor = ex == executors.end() ? nullptr : ex->second;
    cs.limiter = makeLimiter(cc.limiter, clock_);
    classes_.emplace(name, std::move(cs));
  }
}

TaskEngine::~TaskEngine() { stop(); }

std::int64_t TaskEngine::nowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.systemTime().time_since_epoch()).count();
}

Status TaskEngine::recover() {
  // Finished tasks are counted (for stats) in the background, as the store was before
  // anything below changes it: a long history does not delay the restart.
  auto count_finished = store_.countByStatusLater();
  auto max = store_.maxSeq();
  if (!max) return max.fullError();
  // The backlog stays in the store: only its size per queue is read here; the queues
  // read their tasks back as they run. Tasks whose class now runs elsewhere (a changed
  // default class) move to that queue first.
  auto groups = store_.pendingGroups();
  if (!groups) return groups.fullError();
  std::vector<TaskRecord> orphans;  // pending tasks whose class is no longer configured
  std::map<std::string, std::int64_t> backlog;
  for (const auto& g : groups.value()) {
    const std::string& target = runsUnder(g.cls);
    if (target.empty()) {
      auto rows = store_.queued(g.queue, std::nullopt, std::numeric_limits<int>::max());
      if (!rows) return rows.fullError();
      for (auto& r : rows.value()) {
        if (r.cls == g.cls) orphans.push_back(std::move(r));
      }
      continue;
    }
    if (g.queue != target) {
      if (Status s = store_.moveQueue(g.cls, g.queue, target); !s.ok()) return s;
    }
    backlog[target] += g.count;
  }
  auto running = store_.withStatus(TaskStatus::Running);
  if (!running) return running.fullError();
  std::lock_guard lock(mu_);
  seq_ = max.value();
  for (const auto& g : groups.value()) totals_.submitted += g.count;
  totals_.submitted += static_cast<std::int64_t>(running.value().size());
  counter_ = std::jthread([this, count = std::move(count_finished)] {
    auto counts = count();
    if (!counts) {
      spdlog::warn("counting finished tasks for stats: {}", counts.error());
      return;
    }
    std::lock_guard counted(mu_);
    for (const auto& [st, n] : counts.value()) {
      if (!isTerminal(st)) continue;
      totals_.submitted += n;
      if (st == TaskStatus::Completed) totals_.completed += n;
      if (st == TaskStatus::Failed) totals_.failed += n;
      if (st == TaskStatus::Cancelled) totals_.cancelled += n;
    }
  });
  std::int64_t requeued = 0;
  for (const auto& [name, n] : backlog) {
    ClassState& cs = classes_.at(name);
    cs.spilled += n;
    cs.spill_from.reset();  // anywhere: the first dispatch reads from the start
    requeued += n;
  }
  int retried = 0, failed = 0, resumed = 0;
  std::vector<TaskRecord> rows = std::move(orphans);
  for (auto& r : running.value()) rows.push_back(std::move(r));
  for (auto& rec : rows) {
    Entry& e = tasks_[rec.id];
    e.rec = std::move(rec);
    e.accepted = true;
    auto cs = classes_.find(runsUnder(e.rec.cls));
    if (cs == classes_.end()) {
      e.rec.status = TaskStatus::Failed;
      e.rec.error = "class '" + e.rec.cls + "' is no longer configured";
      e.rec.finished_ms = nowMs();
      ++failed;
      persistLocked(e);
      continue;
    }
    if (cs->second.executor->resumable()) {
      // Its work (a Slurm job) went on without us: the same attempt is launched again
      // and its executor adopts the work. Nothing to write until it is dispatched.
      e.rec.status = TaskStatus::Pending;
      e.rec.attempts -= 1;
      e.resuming = true;
      ++resumed;
    } else {
      // The process died while this attempt ran: that attempt counts as failed.
      if (e.rec.attempts < policyOf(e, cs->second).max_attempts) {
        e.rec.status = TaskStatus::Pending;
        e.rec.error = "attempt " + std::to_string(e.rec.attempts) + " was interrupted by an orchestrator restart";
        e.rec.not_before_ms = nowMs() + retryDelay(policyOf(e, cs->second), e.rec.attempts + 1).count();
        ++retried;
      } else {
        e.rec.status = TaskStatus::Failed;
        e.rec.error = "the orchestrator stopped while attempt " + std::to_string(e.rec.attempts) +
                      " ran, and no attempts are left";
        e.rec.finished_ms = nowMs();
        ++failed;
      }
      persistLocked(e);
      if (e.rec.status == TaskStatus::Failed) continue;
    }
    enqueueLocked(e);
  }
  if (requeued + retried + failed + resumed > 0) {
    spdlog::info("recovered {} queued task(s) (read from the store as they run); {} interrupted task(s) will be "
                 "retried, {} failed, {} resumed",
                 requeued, retried, failed, resumed);
  }
  return Status::Ok();
}

std::string TaskEngine::executorOf(const std::string& cls) {
  std::lock_guard lock(mu_);
  auto it = classes_.find(runsUnder(cls));
  return it == classes_.end() ? std::string() : it->second.executor->kind();
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
    std::set<Executor*> resumable;
    for (auto& [id, e] : tasks_) {
      if (e.rec.status == TaskStatus::Running) {
        e.interrupted = true;
        auto& ex = classes_.at(runsUnder(e.rec.cls)).executor;
        if (ex->resumable()) {
          resumable.insert(ex.get());
        } else {
          e.cancel.request_stop();
        }
      }
    }
    // Detached attempts finish at once (through finishAttempt, which takes the lock).
    lock.unlock();
    for (Executor* ex : resumable) ex->detach();
    lock.lock();
    threads_cv_.wait(lock, [this] { return running_threads_ == 0; });
  }
  if (counter_.joinable()) counter_.join();
  if (timer_.joinable()) {
    timer_.request_stop();
    {
      std::lock_guard lock(mu_);
      timer_cv_.notify_all();
    }
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

bool TaskEngine::admitLocked(SubmitRequest& req, const std::string& hash, SubmitDone done, TaskRecord* rec) {
  if (stopping_) {
    done(Error{"the orchestrator is shutting down", ErrorKind::Unavailable});
    return false;
  }
  auto it = tasks_.find(req.id);
  if (it != tasks_.end()) {
    if (it->second.rec.request_hash != hash) {
      observer_.onRejected(runsUnder(req.cls), "duplicate");
      done(Error{"task id '" + req.id + "' is taken by a different request", ErrorKind::AlreadyExists});
    } else if (!it->second.accepted) {
      it->second.waiters.push_back(std::move(done));
    } else {
      done(req.id);
    }
    return false;
  }
  ClassState& cs = classes_.at(runsUnder(req.cls));
  if (queuedCount(cs) >= cs.cfg.max_queued) {
    observer_.onRejected(runsUnder(req.cls), "queue_full");
    done(Error{"class '" + req.cls + "' has " + std::to_string(cs.cfg.max_queued) +
                   " tasks waiting (max_queued); retry later",
               ErrorKind::Unavailable});
    return false;
  }
  Entry& e = tasks_[req.id];
  e.rec.seq = ++seq_;
  e.rec.id = req.id;
  e.rec.cls = req.cls;
  e.rec.queue = cs.name;
  e.rec.payload = std::move(req.payload);
  e.rec.priority = req.priority;
  e.rec.workflow_id = req.workflow_id;
  e.rec.retry = req.retry;
  e.rec.request_hash = hash;
  e.rec.submitted_ms = nowMs();
  e.waiters.push_back(std::move(done));
  e.queued_at = clock_.monotonicTime();
  // Nothing waits before it and a slot is free: it takes the slot now and is inserted
  // as running, so that one commit both accepts it and starts its attempt.
  if (started_ && cs.queue.empty() && cs.spilled == 0 && cs.admitting == 0 && cs.inflight < cs.limiter->limit()) {
    beginAttemptLocked(cs, e);
    e.launch_on_insert = true;
  } else {
    ++cs.admitting;
  }
  *rec = e.rec;
  return true;
}

void TaskEngine::submit(SubmitRequest req, SubmitDone done) {
  Payload expanded;
  if (Status s = validateRequest(req, &expanded); !s.ok()) {
    const std::string& under = runsUnder(req.cls);
    observer_.onRejected(under.empty() ? "unknown" : under, "invalid");
    done(s.fullError());
    return;
  }
  const std::string hash = requestHash(req.cls, req.payload, req.priority, req.workflow_id);
  TaskRecord rec;
  {
    std::lock_guard lock(mu_);
    if (!admitLocked(req, hash, std::move(done), &rec)) return;
  }
  const std::string id = rec.id;
  store_.insert(rec, [this, id](Status s) { onInserted(id, s); });
}

void TaskEngine::submitBatch(std::vector<SubmitRequest> reqs, BatchDone done) {
  if (reqs.empty()) {
    done({});
    return;
  }
  struct Batch {
    std::vector<std::optional<Result<std::string>>> results;
    std::atomic<std::size_t> left;
    BatchDone done;
  };
  auto batch = std::make_shared<Batch>();
  batch->results.resize(reqs.size());
  batch->left = reqs.size();
  batch->done = std::move(done);
  // Each slot is written once, by whichever thread finished that request; the last one
  // to finish (acq_rel on the counter) sees every slot and answers.
  auto answer = [batch](std::size_t i) {
    return [batch, i](Result<std::string> r) {
      batch->results[i].emplace(std::move(r));
      if (batch->left.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      std::vector<Result<std::string>> out;
      out.reserve(batch->results.size());
      for (auto& slot : batch->results) out.push_back(std::move(*slot));
      batch->done(std::move(out));
    };
  };
  // Validation outside the lock; then one pass under it; then one write for the batch
  // (one transaction) and one pass under the lock when it is durable.
  std::vector<std::string> hashes(reqs.size());
  std::vector<bool> valid(reqs.size(), false);
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    Payload expanded;
    if (Status s = validateRequest(reqs[i], &expanded); !s.ok()) {
      const std::string& under = runsUnder(reqs[i].cls);
      observer_.onRejected(under.empty() ? "unknown" : under, "invalid");
      answer(i)(s.fullError());
      continue;
    }
    hashes[i] = requestHash(reqs[i].cls, reqs[i].payload, reqs[i].priority, reqs[i].workflow_id);
    valid[i] = true;
  }
  std::vector<TaskRecord> recs;
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < reqs.size(); ++i) {
      if (!valid[i]) continue;
      TaskRecord rec;
      if (!admitLocked(reqs[i], hashes[i], answer(i), &rec)) continue;
      ids.push_back(rec.id);
      recs.push_back(std::move(rec));
    }
  }
  if (recs.empty()) return;
  store_.insertMany(std::move(recs),
                    [this, ids = std::move(ids)](std::vector<Status> outcomes) { onInsertedMany(ids, std::move(outcomes)); });
}

void TaskEngine::onInserted(const std::string& id, Status s) {
  std::vector<Status> outcomes;
  outcomes.push_back(std::move(s));
  onInsertedMany({id}, std::move(outcomes));
}

void TaskEngine::onInsertedMany(const std::vector<std::string>& ids, std::vector<Status> outcomes) {
  // What is left to do for each write once the lock is released.
  struct After {
    const std::string* id = nullptr;
    Status s;
    std::vector<SubmitDone> waiters;
    TaskRecord rec;
    std::function<void()> launch;  // its attempt, when it was inserted running
  };
  std::vector<After> afters;
  afters.reserve(ids.size());
  bool watched = false;
  {
    std::lock_guard lock(mu_);
    {
      // Checked under mu_: a watch that starts later takes its snapshot after this pass.
      std::lock_guard wlock(watch_mu_);
      watched = !watches_.empty();
    }
    for (std::size_t i = 0; i < ids.size(); ++i) {
      auto it = tasks_.find(ids[i]);
      if (it == tasks_.end()) continue;
      if (it->second.accepted) continue;  // a refill found the stored task first and answered the waiters
      After a;
      a.id = &ids[i];
      a.s = std::move(outcomes[i]);
      a.waiters.swap(it->second.waiters);
      Entry& e = it->second;
      const bool in_slot = e.launch_on_insert;
      endAdmissionLocked(e);
      if (a.s.ok() && in_slot) {
        e.accepted = true;
        ++totals_.submitted;
        ClassState& cs = classes_.at(runsUnder(e.rec.cls));
        observer_.onAccepted(cs.name);
        if (!e.cancel_requested && !stopping_ && !e.interrupted) {
          ++cs.inflight;  // the slot it was admitted into stays taken
          ExecRequest req = launchLocked(cs, e);
          if (watched || listener_) {
            a.rec = e.rec;  // for the watchers and the listener
            a.rec.payload.clear();
          }
          a.launch = [this, id = e.rec.id, r = std::move(req), ex = cs.executor,
                      token = e.cancel.get_token()]() mutable {
            pool_.run([this, id = std::move(id), r = std::move(r), ex = std::move(ex), token]() mutable {
              runAttempt(std::move(id), std::move(r), std::move(ex), token);
            });
          };
        } else {
          // Cancelled, or the orchestrator is stopping, before its attempt could start:
          // the attempt never ran. Watchers see it submitted now, then the change below
          // once that is durable.
          e.rec.attempts -= 1;
          e.rec.started_ms = 0;
          e.rec.status = TaskStatus::Pending;
          if (watched) a.rec = e.rec;
          if (e.cancel_requested) {
            e.rec.status = TaskStatus::Cancelled;
            e.rec.error = "cancelled before it ran";
            e.rec.finished_ms = nowMs();
          } else {
            e.rec.error = "interrupted by an orchestrator shutdown; will run again";
          }
          persistLocked(e);
          dispatchLocked(cs);
        }
      } else if (a.s.ok()) {
        e.accepted = true;
        e.spillable = true;
        ++totals_.submitted;
        observer_.onAccepted(runsUnder(e.rec.cls));
        if (watched) a.rec = e.rec;  // for the watchers (a copy only when someone watches)
        if (e.cancel_requested) {
          e.rec.status = TaskStatus::Cancelled;
          e.rec.error = "cancelled before it ran";
          e.rec.finished_ms = nowMs();
          persistLocked(e);
        } else {
          enqueueLocked(e);  // may leave memory: `e` is not used after this
        }
      } else {
        a.rec = std::move(it->second.rec);
        const std::string under = runsUnder(a.rec.cls);
        tasks_.erase(it);
        if (in_slot) dispatchLocked(classes_.at(under));  // the slot it held is free again
      }
      afters.push_back(std::move(a));
    }
  }
  for (auto& a : afters) {
    const std::string& id = *a.id;
    if (a.s.ok()) {
      if (a.launch) {
        a.launch();  // first: the attempt's thread wakes while the clients are answered
        if (watched) {
          // Watchers see both changes the one write made, in order.
          TaskRecord submitted = a.rec;
          submitted.status = TaskStatus::Pending;
          submitted.attempts -= 1;
          submitted.started_ms = 0;
          notify(submitted);
          notify(a.rec);
        }
        if (listener_) listener_(a.rec);
      } else if (watched) {
        notify(a.rec);
      }
      for (auto& w : a.waiters) w(id);
      continue;
    }
    if (a.s.kind() == ErrorKind::AlreadyExists) {
      // Taken by a task that is no longer in memory: the same request again is fine.
      auto stored = store_.get(id);
      const bool same = stored && stored.value() && stored.value()->request_hash == a.rec.request_hash;
      if (!same) observer_.onRejected(runsUnder(a.rec.cls), "duplicate");
      for (auto& w : a.waiters) {
        if (same) {
          w(id);
        } else {
          w(Error{"task id '" + id + "' is taken by a different request", ErrorKind::AlreadyExists});
        }
      }
      continue;
    }
    observer_.onRejected(runsUnder(a.rec.cls), "store");
    for (auto& w : a.waiters) w(a.s.fullError());
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
  if (it != tasks_.end() && !it->second.accepted) {
    // Its insert is still being written: it is cancelled as soon as it is durable
    // (a workflow cancelling its steps can be that quick).
    it->second.cancel_requested = true;
    return Status::Ok();
  }
  if (it == tasks_.end()) {
    // Waiting in the store (the backlog beyond the queue in memory)? Read under the lock,
    // so that no refill takes it meanwhile.
    auto stored = store_.get(id);
    if (stored && stored.value() && stored.value()->status == TaskStatus::Pending) {
      auto cs = classes_.find(runsUnder(stored.value()->cls));
      if (cs != classes_.end()) {
        cs->second.spilled = std::max<std::int64_t>(0, cs->second.spilled - 1);
        Entry& e = tasks_[id];
        e.rec = std::move(*stored.value());
        e.accepted = true;
        e.rec.status = TaskStatus::Cancelled;
        e.rec.error = "cancelled before it ran";
        e.rec.finished_ms = nowMs();
        persistLocked(e);
        return Status::Ok();
      }
    }
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
      if (cs.queue.erase(QueueKey{-e.rec.priority, e.rec.seq}) == 0) {  // waiting for its retry
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
      e.rec.finished_ms = nowMs();
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
  cfg_.queue_in_memory = next.queue_in_memory;
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
    c.queued = static_cast<int>(std::min<std::int64_t>(queuedCount(cs), INT32_MAX));
    c.queued_in_store = cs.spilled;
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
