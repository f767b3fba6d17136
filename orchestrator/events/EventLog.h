// EventLog: the outbox as the relay and StreamEvents see it. Both task stores implement
// it; events enter it only with the writes that cause them (WriteQueue::Write::events)
// or, for producers without a state change of their own, through appendEvents.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/Result.h"
#include "orchestrator/events/Event.h"

namespace dspy::orchestrator {

struct OutboxStats {
  std::int64_t pending = 0;         // events not yet delivered to Kafka
  std::int64_t oldest_pending_ns = 0;  // commit time of the oldest of them (0: none)
  std::int64_t last_seq = 0;        // the newest event's seq
};

class EventLog {
 public:
  using Done = std::function<void(Status)>;
  using Committed = std::function<void(const std::vector<Event>&)>;
  virtual ~EventLog() = default;

  // Whether new events wait for the relay (Kafka configured) or are only kept for
  // StreamEvents and pruned like delivered ones. Set before the first write.
  virtual void setRelayed(bool relayed) = 0;
  // Called on the store's writer thread after each commit with the events it stored
  // (seq, resource_seq and ts_ns set), before the writes' `done` callbacks. Set once,
  // before the first write.
  virtual void setCommitted(Committed fn) = 0;
  virtual void appendEvents(std::vector<Event> events, Done done) = 0;

  // Events with seq > after_seq in seq order, at most `limit`; only those waiting for
  // the relay when `pending_only`.
  virtual Result<std::vector<Event>> readEvents(std::int64_t after_seq, int limit, bool pending_only) = 0;
  // The largest seq of an event committed before `ts_ns` (0 if none): replay from a time
  // is readEvents(seqBefore(t), ...). Commit times never decrease along seq.
  virtual Result<std::int64_t> seqBefore(std::int64_t ts_ns) = 0;
  virtual void markDelivered(std::vector<std::int64_t> seqs, Done done) = 0;
  // Deletes at most `max_rows` events committed before `before_ns` that are no longer
  // pending; `done` gets how many went.
  virtual void pruneEvents(std::int64_t before_ns, int max_rows, std::function<void(Result<std::int64_t>)> done) = 0;
  virtual OutboxStats outboxStats() = 0;
};

// Gives stored events their seq, resource_seq and a commit time that never decreases.
// Used on a store's writer thread only. A resource's last sequence number comes from a
// bounded cache (a resource leaves it with its final event: a task's or run's end),
// else from `lookup` (what the store holds for it; 0 for none).
class EventStamper {
 public:
  using Lookup = std::function<std::int64_t(const std::string& resource_id)>;
  EventStamper(std::int64_t last_seq, std::int64_t last_ts_ns, Lookup lookup);
  void stamp(Event& e, std::int64_t now_ns);
  // The sequence number the resource's last stamped event got (0 for none): what the
  // next stamp() of an event of it adds one to.
  std::int64_t last(const std::string& resource);
  // A transaction rolled back: forget what was stamped since the last commit().
  void rollback();
  void commit();
  std::int64_t lastSeq() const { return seq_; }

 private:
  std::unordered_map<std::string, std::int64_t>::iterator cached(const std::string& resource,
                                                                std::optional<std::int64_t> known = std::nullopt);
  std::int64_t seq_, ts_;
  std::int64_t committed_seq_, committed_ts_;
  Lookup lookup_;
  std::unordered_map<std::string, std::int64_t> last_;
  static constexpr std::size_t kMaxCached = 100'000;
};

// A filter of event types: exact names, or a prefix ending in '*' ("workflow_*").
// Empty means all. Unknown names are an InvalidArgument error naming them.
Result<std::vector<std::string>> parseEventFilter(const std::vector<std::string>& types);
bool eventMatches(const std::vector<std::string>& filter, const std::string& type);

}  // namespace dspy::orchestrator
