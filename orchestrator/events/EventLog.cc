#include "orchestrator/events/EventLog.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace dspy::orchestrator {

EventStamper::EventStamper(std::int64_t last_seq, std::int64_t last_ts_ns, Lookup lookup)
    : seq_(last_seq), ts_(last_ts_ns), committed_seq_(last_seq), committed_ts_(last_ts_ns), lookup_(std::move(lookup)) {}

void EventStamper::stamp(Event& e, std::int64_t now_ns) {
  e.seq = ++seq_;
  ts_ = std::max(ts_, now_ns);
  e.ts_ns = ts_;
  auto it = e.first_of_resource ? cached(e.resource_id, 0) : cached(e.resource_id);
  e.resource_seq = ++it->second;
  // A resource's last event: forget it (a later one, rare, looks the number up).
  static const std::array<std::string_view, 6> kLast{"task_completed",     "task_failed",     "task_cancelled",
                                                     "workflow_completed", "workflow_failed", "workflow_cancelled"};
  if (std::find(kLast.begin(), kLast.end(), e.type) != kLast.end()) last_.erase(it);
}

std::unordered_map<std::string, std::int64_t>::iterator EventStamper::cached(const std::string& resource,
                                                                            std::optional<std::int64_t> known) {
  auto it = last_.find(resource);
  if (it != last_.end()) return it;
  if (last_.size() >= kMaxCached) last_.clear();
  const std::int64_t before = known ? *known : (lookup_ ? lookup_(resource) : 0);
  return last_.emplace(resource, before).first;
}

std::int64_t EventStamper::last(const std::string& resource) { return cached(resource)->second; }

void EventStamper::rollback() {
  seq_ = committed_seq_;
  ts_ = committed_ts_;
  last_.clear();  // some counts moved on in a transaction that did not happen
}

void EventStamper::commit() {
  committed_seq_ = seq_;
  committed_ts_ = ts_;
}

Result<std::vector<std::string>> parseEventFilter(const std::vector<std::string>& types) {
  std::vector<std::string> out;
  std::string unknown;
  for (const auto& t : types) {
    if (t.empty()) continue;
    bool ok = isKnownEventType(t);
    if (!ok && t.back() == '*') {
      const std::string prefix = t.substr(0, t.size() - 1);
      for (const auto& k : knownEventTypes()) ok = ok || k.rfind(prefix, 0) == 0;
    }
    if (!ok) {
      unknown += (unknown.empty() ? "" : ", ") + ("'" + t + "'");
      continue;
    }
    out.push_back(t);
  }
  if (!unknown.empty()) {
    std::string known;
    for (const auto& k : knownEventTypes()) known += (known.empty() ? "" : ", ") + k;
    return Error{"unknown event type(s) " + unknown + "; known: " + known + " (a trailing * matches a prefix)",
                 ErrorKind::InvalidArgument};
  }
  return out;
}

bool eventMatches(const std::vector<std::string>& filter, const std::string& type) {
  if (filter.empty()) return true;
  for (const auto& f : filter) {
    if (f == type) return true;
    if (!f.empty() && f.back() == '*' && type.compare(0, f.size() - 1, f, 0, f.size() - 1) == 0) return true;
  }
  return false;
}

}  // namespace dspy::orchestrator
