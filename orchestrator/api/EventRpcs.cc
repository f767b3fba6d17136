// StreamEvents: replay from the outbox from a time, then live events from the hub, with
// a type filter. A client that reads too slowly is cut off with RESOURCE_EXHAUSTED and
// the time to resume from, instead of growing the daemon's memory.
#include <spdlog/spdlog.h>

#include "common/GrpcErrors.h"
#include "common/GrpcStream.h"
#include "orchestrator/api/OrchestratorService.h"
#include "orchestrator/events/EventHub.h"
#include "orchestrator/events/EventLog.h"

namespace dspy::orchestrator {

namespace pb = ::orchestrator::v1;

namespace {

pb::SystemEvent toProto(const Event& e) {
  pb::SystemEvent out;
  out.set_event_type(e.type);
  out.set_resource_id(e.resource_id);
  for (const auto& [k, v] : e.data) (*out.mutable_data())[k] = v;
  out.set_timestamp(e.ts_ns / 1'000'000'000);
  out.set_timestamp_ns(e.ts_ns);
  out.set_event_id(e.id);
  out.set_sequence(e.resource_seq);
  out.set_source(e.source);
  return out;
}

std::int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

grpc::ServerWriteReactor<pb::SystemEvent>* OrchestratorService::StreamEvents(grpc::CallbackServerContext*,
                                                                              const pb::StreamEventsRequest* req) {
  using Stream = ProducerStream<pb::SystemEvent>;
  if (parts_.events == nullptr || parts_.hub == nullptr) {
    return Stream::failed(grpc::Status(grpc::StatusCode::UNAVAILABLE, "events are not set up in this orchestrator"));
  }
  auto filter = parseEventFilter({req->event_types().begin(), req->event_types().end()});
  if (!filter) return Stream::failed(toGrpc(filter.fullError()));
  if (req->since_timestamp() < 0 || req->since_timestamp_ns() < 0) {
    return Stream::failed(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "since_timestamp must not be negative"));
  }
  if (req->since_timestamp() > INT64_MAX / 1'000'000'000) {
    return Stream::failed(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                       "since_timestamp is unix seconds; " + std::to_string(req->since_timestamp()) +
                                           " is out of range (use since_timestamp_ns for nanoseconds)"));
  }
  const std::int64_t since =
      req->since_timestamp_ns() > 0 ? req->since_timestamp_ns() : req->since_timestamp() * 1'000'000'000;
  const std::int64_t now = nowNs();
  if (since > now + 5'000'000'000LL) {
    return Stream::failed(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        "since_timestamp is in the future (" + rfc3339Ns(since) + ", now " + rfc3339Ns(now) +
            "); give a past time to replay from, or 0 for live events only"));
  }
  EventLog& log = *parts_.events;
  EventHub& hub = *parts_.hub;
  return new Stream([&log, &hub, filter = std::move(filter).value(), since](const Stream::Write& write,
                                                                           std::stop_token stop) -> grpc::Status {
    // Subscribed before the replay, so nothing falls between the two; the seq removes
    // what both see.
    auto sub = hub.subscribe(filter);
    struct Unsubscribe {
      EventHub& h;
      std::shared_ptr<EventHub::Subscription> s;
      ~Unsubscribe() { h.unsubscribe(s); }
    } guard{hub, sub};
    std::int64_t last = 0;
    std::int64_t last_ts = since;
    if (since > 0) {
      auto start = log.seqBefore(since);
      if (!start) return toGrpc(start.fullError());
      last = start.value();
      while (!stop.stop_requested()) {
        auto batch = log.readEvents(last, 1000, false);
        if (!batch) return toGrpc(batch.fullError());
        if (batch.value().empty()) break;
        for (const auto& e : batch.value()) {
          last = e.seq;
          if (!eventMatches(filter, e.type)) continue;
          if (!write(toProto(e))) return grpc::Status::OK;
          last_ts = e.ts_ns;
        }
      }
    }
    while (!stop.stop_requested()) {
      auto events = sub->next(stop, std::chrono::seconds(1));
      for (const auto& e : events) {
        if (e.seq <= last) continue;
        last = e.seq;
        if (!write(toProto(e))) return grpc::Status::OK;
        last_ts = e.ts_ns;
      }
      if (events.empty() && sub->overflowed()) {
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            "this stream fell too far behind the events and was ended; resume with "
                            "since_timestamp_ns=" + std::to_string(last_ts + 1));
      }
    }
    return grpc::Status::OK;
  });
}

}  // namespace dspy::orchestrator
