// The in-memory store's outbox (tests and benchmark baselines): the same EventLog as the
// SQLite store's, kept in a deque.
#include <algorithm>
#include <chrono>

#include "orchestrator/store/MemoryTaskStore.h"

namespace dspy::orchestrator {

namespace {
std::int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
std::int64_t nowMs() { return nowNs() / 1'000'000; }
}  // namespace

void MemoryTaskStore::storeEventsLocked(std::vector<Event>& events) {
  for (auto& e : events) {
    stamper_.stamp(e, nowNs());
    resource_seqs_[e.resource_id] = e.resource_seq;
    events_.push_back({e, relayed_ ? 0 : -1});
    if (relayed_) ++pending_;
  }
}

void MemoryTaskStore::setRelayed(bool relayed) {
  std::lock_guard lock(mu_);
  relayed_ = relayed;
}

void MemoryTaskStore::setCommitted(Committed fn) { writes_.setCommitted(std::move(fn)); }

void MemoryTaskStore::appendEvents(std::vector<Event> events, Done done) {
  writeOp([] { return Status::Ok(); }, std::move(done), std::move(events));
}

Result<std::vector<Event>> MemoryTaskStore::readEvents(std::int64_t after_seq, int limit, bool pending_only) {
  std::lock_guard lock(mu_);
  std::vector<Event> out;
  auto it = std::upper_bound(events_.begin(), events_.end(), after_seq,
                             [](std::int64_t s, const StoredEvent& e) { return s < e.event.seq; });
  for (; it != events_.end() && static_cast<int>(out.size()) < limit; ++it) {
    if (!pending_only || it->delivered_ms == 0) out.push_back(it->event);
  }
  return out;
}

Result<std::int64_t> MemoryTaskStore::seqBefore(std::int64_t ts_ns) {
  std::lock_guard lock(mu_);
  auto it = std::lower_bound(events_.begin(), events_.end(), ts_ns,
                             [](const StoredEvent& e, std::int64_t t) { return e.event.ts_ns < t; });
  if (it == events_.begin()) return events_.empty() ? stamper_.lastSeq() : events_.front().event.seq - 1;
  return std::prev(it)->event.seq;
}

void MemoryTaskStore::markDelivered(std::vector<std::int64_t> seqs, Done done) {
  writeOp([this, seqs = std::move(seqs)] {
    const std::int64_t now = nowMs();
    for (const auto s : seqs) {
      auto it = std::lower_bound(events_.begin(), events_.end(), s,
                                 [](const StoredEvent& e, std::int64_t v) { return e.event.seq < v; });
      if (it != events_.end() && it->event.seq == s && it->delivered_ms == 0) {
        it->delivered_ms = now;
        --pending_;
      }
    }
    return Status::Ok();
  }, std::move(done));
}

void MemoryTaskStore::pruneEvents(std::int64_t before_ns, int max_rows, std::function<void(Result<std::int64_t>)> done) {
  auto count = std::make_shared<std::int64_t>(0);
  writeOp([this, before_ns, max_rows, count] {
    // Oldest first; a pending event stops the prune (what follows it is newer anyway).
    while (!events_.empty() && *count < max_rows && events_.front().event.ts_ns < before_ns &&
           events_.front().delivered_ms != 0) {
      events_.pop_front();
      ++*count;
    }
    return Status::Ok();
  }, [count, done = std::move(done)](Status s) {
    if (!s.ok()) return done(s.fullError());
    done(*count);
  });
}

OutboxStats MemoryTaskStore::outboxStats() {
  std::lock_guard lock(mu_);
  OutboxStats st;
  st.pending = pending_;
  st.last_seq = stamper_.lastSeq();
  for (const auto& e : events_) {
    if (e.delivered_ms == 0) {
      st.oldest_pending_ns = e.event.ts_ns;
      break;
    }
  }
  return st;
}

// Slurm job rows (kept with the events: both are small tables beside the tasks).
void MemoryTaskStore::putSlurmJob(const SlurmJobRecord& job, std::vector<Event> events, Done done) {
  writeOp(
      [this, job] {
        slurm_jobs_[{job.task_id, job.attempt}] = job;
        return Status::Ok();
      },
      std::move(done), std::move(events));
}

Result<std::optional<SlurmJobRecord>> MemoryTaskStore::getSlurmJob(const std::string& task_id, int attempt) {
  std::lock_guard lock(mu_);
  auto it = slurm_jobs_.find({task_id, attempt});
  if (it == slurm_jobs_.end()) return std::optional<SlurmJobRecord>();
  return std::optional<SlurmJobRecord>(it->second);
}

Result<std::optional<SlurmJobRecord>> MemoryTaskStore::latestSlurmJob(const std::string& task_id) {
  std::lock_guard lock(mu_);
  auto it = slurm_jobs_.lower_bound({task_id, INT32_MAX});
  if (it == slurm_jobs_.begin()) return std::optional<SlurmJobRecord>();
  --it;
  if (it->first.first != task_id) return std::optional<SlurmJobRecord>();
  return std::optional<SlurmJobRecord>(it->second);
}

}  // namespace dspy::orchestrator
