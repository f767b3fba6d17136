#include "orchestrator/store/WriteQueue.h"

#include <sched.h>

#include <algorithm>
#include <iterator>
#include <thread>

#include "common/Payload.h"

namespace dspy::orchestrator {

namespace {

// The writer may spin only when another CPU can run the thread that brings it work.
bool severalCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return false;
  return CPU_COUNT(&set) > 1;
}

void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#else
  std::this_thread::yield();
#endif
}

}  // namespace

WriteQueue::WriteQueue(Commit commit, int max_batch)
    : commit_(std::move(commit)),
      max_batch_(static_cast<std::size_t>(std::max(1, max_batch))),
      spin_(severalCpus()),
      thread_([this](std::stop_token stop) { loop(stop); }) {}

WriteQueue::~WriteQueue() {
  flush();
  thread_.request_stop();
  thread_.join();
}

void WriteQueue::push(Write write) {
  {
    std::lock_guard lock(mu_);
    pending_.push_back(std::move(write));
    has_work_.store(true, std::memory_order_release);
  }
  cv_.notify_one();
}

void WriteQueue::prepare(Write& w) {
  if (w.is_insert && w.payload_json.empty()) w.payload_json = payloadToJson(w.task.payload);
  for (auto& e : w.events) {
    if (e.data_json.empty()) e.data_json = payloadToJson(e.data);
  }
}

void WriteQueue::pushMany(std::vector<Write> writes) {
  if (writes.empty()) return;
  for (std::size_t i = 0; i + 1 < writes.size(); ++i) writes[i].joined_with_next = true;
  writes.back().joined_with_next = false;
  {
    std::lock_guard lock(mu_);
    for (auto& w : writes) pending_.push_back(std::move(w));
    has_work_.store(true, std::memory_order_release);
  }
  cv_.notify_one();
}

void WriteQueue::pushInserts(std::vector<TaskRecord> tasks, std::function<void(std::vector<Status>)> done) {
  if (tasks.empty()) {
    done({});
    return;
  }
  // The writes' callbacks run one after another on the writer thread, in order, so the
  // last one sees every outcome without further synchronisation.
  struct Group {
    std::vector<Status> outcomes;
    std::function<void(std::vector<Status>)> done;
  };
  auto group = std::make_shared<Group>();
  group->outcomes.reserve(tasks.size());
  group->done = std::move(done);
  const std::size_t n = tasks.size();
  std::vector<Write> writes;
  writes.reserve(n);
  for (auto& t : tasks) {
    Write w;
    w.is_insert = true;
    w.events = insertEvents(t);
    w.task = std::move(t);
    prepare(w);
    w.done = [group, n](Status s) {
      group->outcomes.push_back(std::move(s));
      if (group->outcomes.size() == n) group->done(std::move(group->outcomes));
    };
    writes.push_back(std::move(w));
  }
  pushMany(std::move(writes));
}

void WriteQueue::flush() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [this] { return pending_.empty() && !busy_; });
}

// A write that arrives while the writer is asleep pays for waking it (a futex wake and,
// on a virtual machine, an idle vCPU's exit: about 60 us here, B2), so after a commit the
// writer first watches for the next write for a short while. Under load the queue is
// rarely empty and this never runs; idle, it costs at most kSpin after each commit.
void WriteQueue::spinForWork(const std::stop_token& stop) {
  if (!spin_) return;
  const auto until = std::chrono::steady_clock::now() + kSpin;
  while (!has_work_.load(std::memory_order_acquire) && !stop.stop_requested()) {
    if (std::chrono::steady_clock::now() >= until) return;
    cpuRelax();
  }
}

void WriteQueue::loop(std::stop_token stop) {
  std::vector<Write> batch;
  std::vector<Status> outcomes;
  std::vector<Event> events;
  while (true) {
    spinForWork(stop);
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, stop, [this] { return !pending_.empty(); });
      if (pending_.empty()) return;  // stopped with nothing left
      std::size_t take = std::min(pending_.size(), max_batch_);
      while (take < pending_.size() && pending_[take - 1].joined_with_next) ++take;  // whole groups
      const auto n = static_cast<std::ptrdiff_t>(take);
      batch.assign(std::make_move_iterator(pending_.begin()), std::make_move_iterator(pending_.begin() + n));
      pending_.erase(pending_.begin(), pending_.begin() + n);
      has_work_.store(!pending_.empty(), std::memory_order_release);
      busy_ = true;
    }
    outcomes.assign(batch.size(), Status::Ok());
    commit_(batch, outcomes);
    if (committed_) {
      events.clear();
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (!outcomes[i].ok()) continue;
        for (auto& e : batch[i].events) events.push_back(std::move(e));
      }
      if (!events.empty()) committed_(events);
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].done) batch[i].done(outcomes[i]);
    }
    batch.clear();
    {
      std::lock_guard lock(mu_);
      busy_ = false;
    }
    idle_cv_.notify_all();
  }
}

}  // namespace dspy::orchestrator
