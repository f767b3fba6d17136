// The engine's work: queues per class, dispatch under the class's limiter, attempts on
// the worker pool, their outcomes (done, retry after a backoff delay, failed), durable
// state changes and the retry timer.
#include "orchestrator/scheduler/TaskEngine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>

#include "common/Text.h"

namespace dspy::orchestrator {

void TaskEngine::enqueueLocked(Entry& e) {
  ClassState& cs = classes_.at(runsUnder(e.rec.cls));
  if (const std::int64_t wait_ms = e.rec.not_before_ms - nowMs(); wait_ms > 0) {
    ++cs.waiting_retry;
    retry_at_.emplace(clock_.monotonicTime() + std::chrono::milliseconds(wait_ms), e.rec.id);
    ++retry_changes_;
    timer_cv_.notify_all();
    return;
  }
  const QueueKey key{-e.rec.priority, e.rec.seq};
  const auto limit = static_cast<std::size_t>(std::max(1, cfg_.queue_in_memory));
  if (e.spillable) {
    // Behind tasks that already wait in the store, or behind a full queue in memory: it
    // waits in the store too (it is durable as it is).
    const bool behind_store = cs.spilled > 0 && (!cs.spill_from || !(key < *cs.spill_from));
    const bool behind_full = cs.queue.size() >= limit && cs.queue.rbegin()->first < key;
    if (behind_store || behind_full) {
      spillLocked(cs, e.rec.id, key);
      return;
    }
  }
  e.queued_at = clock_.monotonicTime();
  cs.queue.emplace(key, e.rec.id);
  if (cs.queue.size() > limit) {
    // Over the limit: the last in dispatch order leaves memory, when it may.
    auto last = std::prev(cs.queue.end());
    auto it = tasks_.find(last->second);
    if (it != tasks_.end() && it->second.spillable) {
      const QueueKey k = last->first;
      const std::string id = last->second;
      cs.queue.erase(last);
      spillLocked(cs, id, k);
    }
  }
  dispatchLocked(cs);
}

void TaskEngine::spillLocked(ClassState& cs, const std::string& id, const QueueKey& key) {
  ++cs.spilled;
  if (cs.spill_from && key < *cs.spill_from) cs.spill_from = key;
  if (cs.spilled == 1 && !cs.spill_from) cs.spill_from = key;
  tasks_.erase(id);
}

bool TaskEngine::refillLocked(ClassState& cs) {
  const int batch = std::max(1, cfg_.queue_in_memory / 2);
  // Rows already in memory (waiting for a retry, or kept past the limit) are skipped;
  // a few rounds at most find the next ones that are not.
  for (int round = 0; round < 16 && cs.spilled > 0 && cs.queue.empty(); ++round) {
    std::optional<TaskStore::QueuePos> from;
    if (cs.spill_from) from = TaskStore::QueuePos{-cs.spill_from->neg_priority, cs.spill_from->seq};
    auto rows = store_.queued(cs.name, from, batch);
    if (!rows) {
      spdlog::error("class '{}': cannot read its backlog from the store ({} tasks wait there): {}", cs.name,
                    cs.spilled, rows.error());
      return false;
    }
    auto& got = rows.value();
    const auto now = clock_.monotonicTime();
    const std::int64_t now_ms = nowMs();
    std::optional<QueueKey> last_read;
    if (!got.empty()) last_read = QueueKey{-got.back().priority, got.back().seq};
    for (auto& rec : got) {
      auto it = tasks_.find(rec.id);
      bool cancel_requested = false;
      if (it != tasks_.end()) {
        Entry& dup = it->second;
        if (dup.accepted) continue;
        endAdmissionLocked(dup);  // its insert will be refused: the stored task takes the entry
        // A resubmission of this id is being written (it will be refused as taken): the
        // stored task takes the entry, and the resubmission is answered now.
        for (auto& w : dup.waiters) {
          if (dup.rec.request_hash == rec.request_hash) {
            w(rec.id);
          } else {
            w(Error{"task id '" + rec.id + "' is taken by a different request", ErrorKind::AlreadyExists});
          }
        }
        dup.waiters.clear();
        cancel_requested = dup.cancel_requested;
      }
      --cs.spilled;
      Entry& e = tasks_[rec.id];
      e.rec = std::move(rec);
      e.accepted = true;
      e.spillable = true;
      if (cancel_requested) {
        e.rec.status = TaskStatus::Cancelled;
        e.rec.error = "cancelled before it ran";
        e.rec.finished_ms = now_ms;
        persistLocked(e);
        continue;
      }
      if (e.rec.not_before_ms > now_ms) {
        ++cs.waiting_retry;
        retry_at_.emplace(now + std::chrono::milliseconds(e.rec.not_before_ms - now_ms), e.rec.id);
        ++retry_changes_;
        timer_cv_.notify_all();
        continue;
      }
      // Its wait so far counts, as if it had waited in memory.
      e.queued_at = now - std::chrono::milliseconds(std::max<std::int64_t>(0, now_ms - e.rec.submitted_ms));
      cs.queue.emplace(QueueKey{-e.rec.priority, e.rec.seq}, e.rec.id);
    }
    if (static_cast<int>(got.size()) < batch) {
      if (cs.spilled != 0) spdlog::debug("class '{}': backlog count was {} over the store's", cs.name, cs.spilled);
      cs.spilled = 0;  // everything waiting in the store has been read
      cs.spill_from.reset();
    } else {
      cs.spill_from = QueueKey{last_read->neg_priority, last_read->seq + 1};
      if (cs.spilled <= 0) cs.spilled = 1;  // more rows may follow: look once more
    }
  }
  return !cs.queue.empty();
}

void TaskEngine::dispatchLocked(ClassState& cs) {
  if (!started_ || stopping_) return;
  while (cs.inflight < cs.limiter->limit()) {
    if (cs.queue.empty() && !(cs.spilled > 0 && refillLocked(cs))) break;
    auto node = cs.queue.extract(cs.queue.begin());
    Entry& e = tasks_.at(node.mapped());
    beginAttemptLocked(cs, e);
    ExecRequest req = launchLocked(cs, e);
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

void TaskEngine::beginAttemptLocked(ClassState& cs, Entry& e) {
  e.rec.status = TaskStatus::Running;
  e.rec.attempts += 1;
  if (!e.resuming || e.rec.started_ms == 0) e.rec.started_ms = nowMs();
  e.resuming = false;
  e.rec.not_before_ms = 0;
  e.started_at = clock_.monotonicTime();
  e.cancel = std::stop_source();
  ++cs.inflight;
  cs.limiter->onStart(cs.inflight);
}

ExecRequest TaskEngine::launchLocked(ClassState& cs, Entry& e) {
  const double waited = std::chrono::duration<double>(e.started_at - e.queued_at).count();
  observer_.onStarted(runsUnder(e.rec.cls), waited);
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
  return req;
}

void TaskEngine::endAdmissionLocked(Entry& e) {
  ClassState& cs = classes_.at(runsUnder(e.rec.cls));
  if (e.launch_on_insert) {
    e.launch_on_insert = false;
    --cs.inflight;
  } else {
    --cs.admitting;
  }
}

void TaskEngine::runAttempt(std::string id, ExecRequest req, std::shared_ptr<Executor> ex, std::stop_token cancel) {
  const auto started = clock_.monotonicTime();
  if (ex->asynchronous()) {
    // The attempt goes on outside this thread; it ends through `finish`, exactly once.
    auto finish = [this, id, started](ExecOutcome outcome) {
      finishAttempt(id, std::move(outcome), clock_.monotonicTime() - started, started);
      std::lock_guard lock(mu_);
      if (--running_threads_ == 0) threads_cv_.notify_all();
    };
    try {
      ex->launch(req, cancel, finish);
    } catch (const std::exception& err) {
      finish(ExecOutcome::failure(std::string("executor error: ") + err.what(), true));
    }
    return;
  }
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
  if (outcome.detached) {
    // A resumable attempt left running at shutdown: the store keeps "running, attempt
    // N", and the next process adopts it.
    dispatchLocked(cs);
    return;
  }
  ++totals_.processed;
  observer_.onAttemptEnded(runsUnder(e.rec.cls), std::chrono::duration<double>(latency).count());
  const int queued = static_cast<int>(std::min<std::int64_t>(queuedCount(cs), INT32_MAX));
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
  } else if (outcome.retryable && e.rec.attempts < policyOf(e, cs).max_attempts) {
    e.rec.status = TaskStatus::Pending;
    e.rec.error = "attempt " + std::to_string(e.rec.attempts) + " failed: " + outcome.error;
    e.rec.not_before_ms = nowMs() + retryDelay(policyOf(e, cs), e.rec.attempts + 1).count();
    observer_.onRetryScheduled(runsUnder(e.rec.cls));
  } else {
    e.rec.status = TaskStatus::Failed;
    e.rec.error = outcome.error;
  }
  if (isTerminal(e.rec.status)) e.rec.finished_ms = nowMs();
  persistLocked(e);
  if (e.rec.status == TaskStatus::Pending && !e.interrupted) enqueueLocked(e);
  dispatchLocked(cs);
}

void TaskEngine::persistLocked(Entry& e, std::function<void()> then) {
  e.spillable = false;  // a write in flight: the store is not yet what memory holds
  if (isTerminal(e.rec.status)) {
    if (e.rec.status == TaskStatus::Completed) {
      ++totals_.completed;
    } else if (e.rec.status == TaskStatus::Failed) {
      ++totals_.failed;
    } else {
      ++totals_.cancelled;
    }
    observer_.onFinished(runsUnder(e.rec.cls), e.rec.status);
  }
  TaskRecord copy = e.rec;
  copy.payload.clear();  // an update does not write the payload, and watchers do not show it
  const bool terminal = isTerminal(copy.status);
  store_.update(copy, [this, copy, terminal, then = std::move(then)](Status s) {
    if (!s.ok()) spdlog::error("task {}: could not record state {}: {}", copy.id, toString(copy.status), s.error());
    notify(copy);
    if (listener_) listener_(copy);
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
    const auto now = clock_.monotonicTime();
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
    // Until the earliest retry is due, or one arrives (it may be earlier). With nothing
    // waiting, look again after a while anyway.
    const auto until = retry_at_.empty() ? now + std::chrono::hours(1) : retry_at_.begin()->first;
    const std::uint64_t seen = retry_changes_;
    clock_.waitUntil(lock, timer_cv_, until, stop, [&] { return retry_changes_ != seen; });
  }
}

}  // namespace dspy::orchestrator
