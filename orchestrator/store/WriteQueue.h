// WriteQueue: the one write path of every TaskStore. Writes queue up while the
// previous batch commits; a writer thread hands each batch (at most `max_batch`) to
// the store's commit function in one go (group commit), then runs the writes' `done`
// callbacks in submission order on that thread. flush() waits until everything queued
// so far is committed and answered.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "orchestrator/events/Event.h"
#include "orchestrator/store/TaskStore.h"

namespace dspy::orchestrator {

class WriteQueue {
 public:
  struct Write {
    bool is_insert = false;
    TaskRecord task;
    TaskStore::Done done;
    // When set, the write is this instead of a task's (workflow records): run inside the
    // batch's transaction, in order with the task writes around it.
    std::function<Status()> apply;
    // Events this write causes: stored in the same transaction when the write succeeds
    // (the commit function stamps them), then handed to `committed`.
    std::vector<Event> events;
    // Set by pushMany on every write of a group but the last: a group is committed in
    // one batch, even when that makes the batch larger than `max_batch`.
    bool joined_with_next = false;
    // An insert's payload serialized ahead, on the caller's thread (empty: serialized
    // by the commit), so that the single writer thread only binds and steps.
    std::string payload_json;
  };
  // Serializes a write's insert payload and its events' data ahead (see above).
  static void prepare(Write& w);
  // Commits `batch`; sets outcomes[i] for each write (they start as Ok) and stamps the
  // events of the writes that succeeded.
  using Commit = std::function<void(std::vector<Write>& batch, std::vector<Status>& outcomes)>;
  using Committed = std::function<void(const std::vector<Event>&)>;

  WriteQueue(Commit commit, int max_batch);
  // Receives, after each commit and before the `done` callbacks, the events stored.
  // Set before the first write.
  void setCommitted(Committed fn) { committed_ = std::move(fn); }
  ~WriteQueue();  // commits what is queued, then stops
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;

  void push(Write write);
  // Queues `writes` as one group: they commit in the same batch.
  void pushMany(std::vector<Write> writes);
  // Inserts of `tasks` (each with its "submitted" event) as one group; `done` runs once,
  // after the last write's outcome, with every outcome in order.
  void pushInserts(std::vector<TaskRecord> tasks, std::function<void(std::vector<Status>)> done);
  void flush();

 private:
  void loop(std::stop_token stop);
  void spinForWork(const std::stop_token& stop);
  static constexpr std::chrono::microseconds kSpin{250};

  Commit commit_;
  Committed committed_;
  std::size_t max_batch_;
  bool spin_;  // more than one CPU to run on
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::condition_variable idle_cv_;
  std::deque<Write> pending_;
  bool busy_ = false;
  std::atomic<bool> has_work_{false};  // mirrors !pending_.empty() for the writer's short spin
  std::jthread thread_;  // last: starts once the rest is ready
};

}  // namespace dspy::orchestrator
