// KafkaRelay: publishes the outbox to Kafka. It reads pending events in seq order,
// produces each with librdkafka (idempotent producer, acks=all; key = resource id, so one
// task's or run's events stay in order in one partition), and marks an event delivered
// only when its delivery report says so. A poll thread of its own serves the delivery
// reports. While the broker is away librdkafka keeps retrying (message.timeout.ms 0 =
// forever by default); if a message still fails, the relay waits for what is in flight,
// backs off and starts again from the oldest pending event. Stop flushes for a bounded
// time; what is not delivered stays pending in the outbox for the next start.
// Optionally each delivered event is also appended to a JSONL spool file per day.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/Result.h"
#include "orchestrator/events/EventHub.h"
#include "orchestrator/events/EventLog.h"

namespace dspy::orchestrator {

struct KafkaConfig {
  std::string brokers;                  // KAFKA_BROKERS; empty = Kafka not configured
  std::string topic = "agent.events";   // KAFKA_EVENT_TOPIC
  std::int64_t linger_ms = 5;
  std::int64_t batch_bytes = 1'000'000;
  std::string compression = "lz4";      // none | gzip | snappy | lz4 | zstd
  std::int64_t message_timeout_ms = 0;  // 0: retry forever while the broker is away
  std::int64_t flush_timeout_ms = 5000; // on stop
  std::int64_t degraded_depth = 100'000;  // Health says degraded above this many pending
  std::map<std::string, std::string> properties;  // more librdkafka settings (TLS, SASL)
  std::string spool_dir;                // KAFKA_SPOOL_DIR: also append delivered events as JSONL
};

struct EventsConfig {
  std::int64_t retention_hours = 24;  // delivered events are pruned after this
  std::int64_t stream_buffer = 10'000;  // a StreamEvents client this far behind is cut off
};

class KafkaRelay {
 public:
  // Checks the settings with librdkafka without connecting: a bad one is an error that
  // names it.
  static Result<std::unique_ptr<KafkaRelay>> create(const KafkaConfig& cfg, EventLog& log, EventHub& hub);
  ~KafkaRelay();
  KafkaRelay(const KafkaRelay&) = delete;
  KafkaRelay& operator=(const KafkaRelay&) = delete;

  void start();
  // Stops producing, waits up to flush_timeout_ms for what is in flight, marks what
  // was delivered, and returns how many events were still pending.
  std::int64_t stop();

  struct Stats {
    std::int64_t produced = 0;   // handed to librdkafka
    std::int64_t delivered = 0;  // acknowledged by the broker
    std::int64_t failed = 0;     // delivery reports with an error (then sent again)
    std::int64_t restarts = 0;   // times the relay went back to the oldest pending event
    std::string last_error;
  };
  Stats stats() const;
  // "connected to N broker(s)" / "waiting for brokers: <error>", for Health.
  std::string state() const;

 private:
  KafkaRelay(const KafkaConfig& cfg, EventLog& log, EventHub& hub);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dspy::orchestrator
