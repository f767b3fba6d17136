// The in-memory TaskStore (tests and benchmark baselines).
#include <algorithm>

#include "orchestrator/store/MemoryTaskStore.h"

namespace dspy::orchestrator {

bool matches(const TaskRecord& t, const TaskFilter& f) {
  if (f.status && t.status != *f.status) return false;
  if (!f.cls.empty() && t.cls != f.cls) return false;
  if (!f.workflow_id.empty() && t.workflow_id != f.workflow_id) return false;
  return t.seq > f.after_seq;
}

MemoryTaskStore::MemoryTaskStore()
    : writes_([this](std::vector<WriteQueue::Write>& batch, std::vector<Status>& outcomes) {
                commit(batch, outcomes);
              },
              1024) {}

MemoryTaskStore::~MemoryTaskStore() = default;

void MemoryTaskStore::insert(const TaskRecord& task, Done done) {
  writes_.push({true, task, std::move(done), nullptr, insertEvents(task)});
}

void MemoryTaskStore::insertMany(std::vector<TaskRecord> tasks, ManyDone done) {
  writes_.pushInserts(std::move(tasks), std::move(done));
}

Result<std::vector<TaskRecord>> MemoryTaskStore::queued(const std::string& queue, std::optional<QueuePos> from,
                                                       int limit) {
  std::lock_guard lock(mu_);
  std::vector<const TaskRecord*> hits;
  for (const auto& [id, t] : tasks_) {
    if (t.status != TaskStatus::Pending || t.queue != queue) continue;
    if (from && !(t.priority < from->priority || (t.priority == from->priority && t.seq >= from->seq))) continue;
    hits.push_back(&t);
  }
  std::sort(hits.begin(), hits.end(), [](const TaskRecord* a, const TaskRecord* b) {
    return a->priority != b->priority ? a->priority > b->priority : a->seq < b->seq;
  });
  std::vector<TaskRecord> out;
  for (std::size_t i = 0; i < hits.size() && static_cast<int>(i) < limit; ++i) out.push_back(*hits[i]);
  return out;
}

Result<std::vector<TaskStore::PendingGroup>> MemoryTaskStore::pendingGroups() {
  std::lock_guard lock(mu_);
  std::map<std::pair<std::string, std::string>, std::int64_t> counts;
  for (const auto& [id, t] : tasks_) {
    if (t.status == TaskStatus::Pending) ++counts[{t.cls, t.queue}];
  }
  std::vector<PendingGroup> out;
  for (const auto& [k, n] : counts) out.push_back(PendingGroup{k.first, k.second, n});
  return out;
}

Result<std::vector<TaskRecord>> MemoryTaskStore::withStatus(TaskStatus status) {
  std::lock_guard lock(mu_);
  std::vector<TaskRecord> out;
  for (const auto& [id, t] : tasks_) {
    if (t.status == status) out.push_back(t);
  }
  std::sort(out.begin(), out.end(), [](const TaskRecord& a, const TaskRecord& b) { return a.seq < b.seq; });
  return out;
}

Status MemoryTaskStore::moveQueue(const std::string& cls, const std::string& from, const std::string& to) {
  writes_.flush();
  std::lock_guard lock(mu_);
  for (auto& [id, t] : tasks_) {
    if (t.status == TaskStatus::Pending && t.cls == cls && t.queue == from) t.queue = to;
  }
  return Status::Ok();
}

void MemoryTaskStore::update(const TaskRecord& task, Done done) {
  writes_.push({false, task, std::move(done), nullptr, {taskEvent(task, false)}});
}

void MemoryTaskStore::flush() { writes_.flush(); }

void MemoryTaskStore::writeOp(std::function<Status()> op, Done done, std::vector<Event> events) {
  WriteQueue::Write w;
  w.apply = std::move(op);
  w.done = std::move(done);
  w.events = std::move(events);
  writes_.push(std::move(w));
}

void MemoryTaskStore::commit(std::vector<WriteQueue::Write>& batch, std::vector<Status>& outcomes) {
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].apply) {
      outcomes[i] = batch[i].apply();
      if (outcomes[i].ok()) storeEventsLocked(batch[i].events);
      continue;
    }
    commitTaskLocked(batch[i], outcomes[i]);
    if (outcomes[i].ok()) storeEventsLocked(batch[i].events);
  }
  stamper_.commit();
}

void MemoryTaskStore::commitTaskLocked(const WriteQueue::Write& w, Status& outcome) {
  const TaskRecord& t = w.task;
  {
    if (w.is_insert) {
      if (!tasks_.emplace(t.id, t).second) outcome = Error{"task id '" + t.id + "' exists", ErrorKind::AlreadyExists};
      return;
    }
    auto it = tasks_.find(t.id);
    if (it == tasks_.end()) {
      outcome = Error{"task '" + t.id + "' not found", ErrorKind::NotFound};
      return;
    }
    // An update carries the task's mutable state only, as in the SQLite store.
    TaskRecord& stored = it->second;
    stored.status = t.status;
    stored.attempts = t.attempts;
    stored.result = t.result;
    stored.error = t.error;
    stored.started_ms = t.started_ms;
    stored.finished_ms = t.finished_ms;
    stored.not_before_ms = t.not_before_ms;
  }
}

Result<std::optional<TaskRecord>> MemoryTaskStore::get(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return std::optional<TaskRecord>{};
  return std::optional<TaskRecord>{it->second};
}

Result<std::vector<TaskRecord>> MemoryTaskStore::unfinished() {
  std::lock_guard lock(mu_);
  std::vector<TaskRecord> out;
  for (const auto& [id, t] : tasks_) {
    if (!isTerminal(t.status)) out.push_back(t);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.seq < b.seq; });
  return out;
}

Result<std::vector<TaskRecord>> MemoryTaskStore::list(const TaskFilter& filter) {
  std::lock_guard lock(mu_);
  std::vector<TaskRecord> out;
  for (const auto& [id, t] : tasks_) {
    if (matches(t, filter)) out.push_back(t);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.seq < b.seq; });
  if (out.size() > static_cast<std::size_t>(filter.limit)) out.resize(static_cast<std::size_t>(filter.limit));
  return out;
}

Result<std::map<TaskStatus, std::int64_t>> MemoryTaskStore::countByStatus() {
  std::lock_guard lock(mu_);
  std::map<TaskStatus, std::int64_t> out;
  for (const auto& [id, t] : tasks_) out[t.status]++;
  return out;
}

Result<std::int64_t> MemoryTaskStore::maxSeq() {
  std::lock_guard lock(mu_);
  std::int64_t m = 0;
  for (const auto& [id, t] : tasks_) m = std::max(m, t.seq);
  return m;
}

}  // namespace dspy::orchestrator
