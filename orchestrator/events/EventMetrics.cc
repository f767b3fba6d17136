#include "orchestrator/events/EventMetrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <memory>

namespace dspy::orchestrator {

void attachEventMetrics(Metrics& metrics, EventLog& log, const KafkaRelay* relay) {
  auto& r = metrics.registry();
  auto* pending = &prometheus::BuildGauge()
                       .Name("orchestrator_outbox_pending_events")
                       .Help("Events in the outbox not yet delivered to Kafka")
                       .Register(r)
                       .Add({});
  auto* oldest = &prometheus::BuildGauge()
                      .Name("orchestrator_outbox_oldest_pending_seconds")
                      .Help("Age of the oldest event not yet delivered to Kafka (0: none)")
                      .Register(r)
                      .Add({});
  auto stored = std::make_shared<CounterFollower>(CounterFollower{&prometheus::BuildCounter()
                                                         .Name("orchestrator_events_stored_total")
                                                         .Help("Events written to the outbox")
                                                         .Register(r)
                                                         .Add({})});
  std::shared_ptr<CounterFollower> delivered, failed, restarts;
  if (relay != nullptr) {
    delivered = std::make_shared<CounterFollower>(CounterFollower{&prometheus::BuildCounter()
                                                         .Name("orchestrator_kafka_events_delivered_total")
                                                         .Help("Events acknowledged by the Kafka broker")
                                                         .Register(r)
                                                         .Add({})});
    failed = std::make_shared<CounterFollower>(CounterFollower{&prometheus::BuildCounter()
                                                      .Name("orchestrator_kafka_delivery_failures_total")
                                                      .Help("Delivery reports with an error (the event is sent again)")
                                                      .Register(r)
                                                      .Add({})});
    restarts = std::make_shared<CounterFollower>(CounterFollower{&prometheus::BuildCounter()
                                                        .Name("orchestrator_kafka_relay_restarts_total")
                                                        .Help("Times the relay went back to the oldest pending event")
                                                        .Register(r)
                                                        .Add({})});
  }
  // Counted from this process's start.
  auto first_seq = std::make_shared<std::int64_t>(log.outboxStats().last_seq);
  metrics.addScrapeHook([&log, relay, pending, oldest, stored, delivered, failed, restarts, first_seq] {
    const OutboxStats st = log.outboxStats();
    pending->Set(static_cast<double>(st.pending));
    const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    oldest->Set(st.oldest_pending_ns == 0 ? 0.0 : static_cast<double>(now - st.oldest_pending_ns) / 1e9);
    stored->to(static_cast<double>(st.last_seq - *first_seq));
    if (relay != nullptr) {
      const auto s = relay->stats();
      delivered->to(static_cast<double>(s.delivered));
      failed->to(static_cast<double>(s.failed));
      restarts->to(static_cast<double>(s.restarts));
    }
  });
}

}  // namespace dspy::orchestrator
