// EventHub: events just committed to the outbox, handed to whoever waits for them: live
// StreamEvents subscribers (each with a bounded buffer) and the Kafka relay (woken when
// there is something new). publish() runs on the store's writer thread and never blocks
// on a subscriber: a subscriber whose buffer is full is marked overflowed and gets no
// more (its stream then ends with a clear status).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <stop_token>
#include <vector>

#include "orchestrator/events/Event.h"

namespace dspy::orchestrator {

class EventHub {
 public:
  class Subscription {
   public:
    // Waits up to `timeout` for events; empty on timeout or stop. After overflowed()
    // it returns what was buffered, then nothing.
    std::vector<Event> next(std::stop_token stop, std::chrono::milliseconds timeout);
    bool overflowed() const;

   private:
    friend class EventHub;
    std::vector<std::string> filter_;
    std::size_t capacity_ = 0;
    mutable std::mutex mu_;
    std::condition_variable_any cv_;
    std::deque<Event> buffer_;
    bool overflowed_ = false;
  };

  explicit EventHub(std::size_t subscriber_capacity = 10'000) : capacity_(subscriber_capacity) {}

  void publish(const std::vector<Event>& events);
  std::shared_ptr<Subscription> subscribe(std::vector<std::string> filter);
  void unsubscribe(const std::shared_ptr<Subscription>& sub);
  std::size_t subscribers() const;

  // The newest seq published so far; waitBeyond() returns once it is past `seq` (true),
  // or at `timeout` / stop (false).
  std::int64_t lastSeq() const { return last_seq_; }
  bool waitBeyond(std::int64_t seq, std::stop_token stop, std::chrono::milliseconds timeout);
  // Wakes every waitBeyond() (the relay, when it has other work to look at).
  void poke();

 private:
  std::size_t capacity_;
  mutable std::mutex mu_;
  std::list<std::shared_ptr<Subscription>> subs_;
  std::mutex seq_mu_;
  std::condition_variable_any seq_cv_;
  std::atomic<std::int64_t> last_seq_{0};
  bool poked_ = false;  // guarded by seq_mu_
};

}  // namespace dspy::orchestrator
