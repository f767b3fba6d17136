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

MemoryTaskStore::MemoryTaskStore() {
  thread_ = std::jthread([this](std::stop_token stop) {
    while (true) {
      std::deque<std::function<void()>> batch;
      {
        std::unique_lock lock(q_mu_);
        q_cv_.wait(lock, stop, [this] { return !queue_.empty(); });
        if (queue_.empty()) return;
        batch.swap(queue_);
        busy_ = true;
      }
      for (auto& fn : batch) fn();
      {
        std::lock_guard lock(q_mu_);
        busy_ = false;
      }
      idle_cv_.notify_all();
    }
  });
}

MemoryTaskStore::~MemoryTaskStore() {
  flush();
  thread_.request_stop();
  thread_.join();
}

void MemoryTaskStore::later(std::function<void()> fn) {
  {
    std::lock_guard lock(q_mu_);
    queue_.push_back(std::move(fn));
  }
  q_cv_.notify_one();
}

void MemoryTaskStore::flush() {
  std::unique_lock lock(q_mu_);
  idle_cv_.wait(lock, [this] { return queue_.empty() && !busy_; });
}

void MemoryTaskStore::insert(const TaskRecord& task, Done done) {
  Status s;
  {
    std::lock_guard lock(mu_);
    if (!tasks_.emplace(task.id, task).second) s = Error{"task id '" + task.id + "' exists", ErrorKind::AlreadyExists};
  }
  later([s, d = std::move(done)] { d(s); });
}

void MemoryTaskStore::update(const TaskRecord& task, Done done) {
  Status s;
  {
    std::lock_guard lock(mu_);
    auto it = tasks_.find(task.id);
    if (it == tasks_.end()) {
      s = Error{"task '" + task.id + "' not found", ErrorKind::NotFound};
    } else {
      it->second = task;
    }
  }
  later([s, d = std::move(done)] {
    if (d) d(s);
  });
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
