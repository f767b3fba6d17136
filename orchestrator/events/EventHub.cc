#include "orchestrator/events/EventHub.h"

#include <algorithm>

#include "orchestrator/events/EventLog.h"

namespace dspy::orchestrator {

std::vector<Event> EventHub::Subscription::next(std::stop_token stop, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, stop, timeout, [this] { return !buffer_.empty(); });
  std::vector<Event> out(std::make_move_iterator(buffer_.begin()), std::make_move_iterator(buffer_.end()));
  buffer_.clear();
  return out;
}

bool EventHub::Subscription::overflowed() const {
  std::lock_guard lock(mu_);
  return overflowed_;
}

void EventHub::publish(const std::vector<Event>& events) {
  if (events.empty()) return;
  {
    std::lock_guard lock(mu_);
    for (const auto& sub : subs_) {
      std::lock_guard slock(sub->mu_);
      if (sub->overflowed_) continue;
      bool added = false;
      for (const auto& e : events) {
        if (!eventMatches(sub->filter_, e.type)) continue;
        if (sub->buffer_.size() >= sub->capacity_) {
          sub->overflowed_ = true;
          break;
        }
        sub->buffer_.push_back(e);
        added = true;
      }
      if (added || sub->overflowed_) sub->cv_.notify_all();
    }
  }
  {
    std::lock_guard lock(seq_mu_);
    last_seq_ = std::max<std::int64_t>(last_seq_, events.back().seq);
  }
  seq_cv_.notify_all();
}

std::shared_ptr<EventHub::Subscription> EventHub::subscribe(std::vector<std::string> filter) {
  auto sub = std::make_shared<Subscription>();
  sub->filter_ = std::move(filter);
  sub->capacity_ = capacity_;
  std::lock_guard lock(mu_);
  subs_.push_back(sub);
  return sub;
}

void EventHub::unsubscribe(const std::shared_ptr<Subscription>& sub) {
  std::lock_guard lock(mu_);
  subs_.remove(sub);
}

std::size_t EventHub::subscribers() const {
  std::lock_guard lock(mu_);
  return subs_.size();
}

bool EventHub::waitBeyond(std::int64_t seq, std::stop_token stop, std::chrono::milliseconds timeout) {
  std::unique_lock lock(seq_mu_);
  const bool ok = seq_cv_.wait_for(lock, stop, timeout, [&] { return last_seq_ > seq || poked_; });
  poked_ = false;
  return ok;
}

void EventHub::poke() {
  {
    std::lock_guard lock(seq_mu_);
    poked_ = true;
  }
  seq_cv_.notify_all();
}

}  // namespace dspy::orchestrator
