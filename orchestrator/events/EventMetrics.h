// The outbox and relay series, read at every scrape: orchestrator_outbox_pending_events,
// orchestrator_outbox_oldest_pending_seconds, orchestrator_events_stored_total and, with
// Kafka, orchestrator_kafka_events_delivered_total, orchestrator_kafka_delivery_failures_total,
// orchestrator_kafka_relay_restarts_total.
#pragma once

#include "common/Metrics.h"
#include "orchestrator/events/EventLog.h"
#include "orchestrator/events/KafkaRelay.h"

namespace dspy::orchestrator {

// `log` and `relay` (may be null) must outlive the scrapes.
void attachEventMetrics(Metrics& metrics, EventLog& log, const KafkaRelay* relay);

}  // namespace dspy::orchestrator
