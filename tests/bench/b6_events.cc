// B6: events through the outbox to a real Kafka broker.
//  - baseline: librdkafka alone producing N messages of the same shape and settings
//    (idempotent, acks=all, lz4, linger 5 ms) until all are acknowledged;
//  - drain: N events already in the SQLite outbox (a backlog after an outage), then the
//    relay starts: time until none is pending (target <= 2x the baseline's time);
//  - sustained: events written to the outbox at a fixed offered rate for a while, with a
//    consumer measuring commit-to-consume latency (p50/p99) and the delivered rate.
// Usage: b6_events OUT_DIR [--events N] [--rate R] [--seconds S]   (KAFKA_BROKERS)
#include <librdkafka/rdkafka.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <thread>

#include "orchestrator/events/EventHub.h"
#include "orchestrator/events/KafkaRelay.h"
#include "orchestrator/store/SqliteTaskStore.h"
#include "tests/bench/BenchStats.h"
#include "tests/support/Process.h"

using namespace dspy::orchestrator;
using Clock = std::chrono::steady_clock;

namespace {

std::string brokers() {
  const char* b = std::getenv("KAFKA_BROKERS");
  return (b != nullptr && *b != '\0') ? b : "127.0.0.1:39092";
}

std::int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Event sample(int i) {
  return makeEvent(i % 3 == 0 ? "task_submitted" : i % 3 == 1 ? "task_started" : "task_completed",
                   {{"task_id", "bench-" + std::to_string(i / 3)}, {"class", "cpu_short"}, {"status", "running"},
                    {"attempt", "1"}});
}

double baseline(const std::string& topic, int n) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [k, v] : std::map<std::string, std::string>{{"bootstrap.servers", brokers()},
                                                                {"enable.idempotence", "true"},
                                                                {"acks", "all"},
                                                                {"linger.ms", "5"},
                                                                {"batch.size", "1000000"},
                                                                {"compression.codec", "lz4"}}) {
    rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err);
  }
  static std::atomic<int> delivered{0};
  delivered = 0;
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) ++delivered;
  });
  rd_kafka_t* p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    Event e = sample(i);
    e.ts_ns = nowNs();
    e.resource_seq = 1;
    const std::string v = eventJson(e);
    while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic.c_str()),
                             RD_KAFKA_V_KEY(const_cast<char*>(e.resource_id.data()), e.resource_id.size()),
                             RD_KAFKA_V_VALUE(const_cast<char*>(v.data()), v.size()),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(p, 10);
    }
    rd_kafka_poll(p, 0);
  }
  rd_kafka_flush(p, 300'000);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  rd_kafka_destroy(p);
  if (delivered != n) std::printf("baseline: only %d of %d delivered\n", delivered.load(), n);
  return secs;
}

void fill(SqliteTaskStore& store, int n) {
  constexpr int kBatch = 1000;
  for (int i = 0; i < n; i += kBatch) {
    std::vector<Event> batch;
    for (int j = i; j < std::min(n, i + kBatch); ++j) batch.push_back(sample(j));
    store.appendEvents(std::move(batch), nullptr);
  }
  store.flush();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: b6_events OUT_DIR [--events N] [--rate R] [--seconds S]\n");
    return 2;
  }
  const std::string out = argv[1];
  int n = 1'000'000, rate = 50'000, seconds = 10;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--events") n = std::atoi(argv[i + 1]);
    if (k == "--rate") rate = std::atoi(argv[i + 1]);
    if (k == "--seconds") seconds = std::atoi(argv[i + 1]);
  }
  std::mt19937_64 rng(std::random_device{}());
  const std::string run = std::to_string(rng() % 1'000'000);
  nlohmann::json result{{"events", n}, {"brokers", brokers()}};

  // Baseline: librdkafka alone.
  const double base = baseline("dspy.bench.base." + run, n);
  result["baseline_seconds"] = base;
  result["baseline_events_per_second"] = n / base;
  std::printf("baseline: %d messages in %.2f s (%.0f/s)\n", n, base, n / base);

  // Drain of a backlog.
  const auto dir = dspy::test::tempDir();
  auto opened = SqliteTaskStore::open(dir, SyncMode::Normal, 4096);
  if (!opened) {
    std::fprintf(stderr, "%s\n", opened.error().c_str());
    return 1;
  }
  auto& store = *opened.value();
  EventHub hub;
  store.setRelayed(true);
  store.setCommitted([&hub](const std::vector<Event>& es) { hub.publish(es); });
  const auto f0 = Clock::now();
  fill(store, n);
  const double fill_s = std::chrono::duration<double>(Clock::now() - f0).count();
  std::printf("outbox: %d events written in %.2f s (%.0f/s)\n", n, fill_s, n / fill_s);
  KafkaConfig kc;
  kc.brokers = brokers();
  kc.topic = "dspy.bench.outbox." + run;
  auto relay = KafkaRelay::create(kc, store, hub);
  if (!relay) {
    std::fprintf(stderr, "%s\n", relay.error().c_str());
    return 1;
  }
  const auto d0 = Clock::now();
  relay.value()->start();
  while (store.outboxStats().pending > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double drain = std::chrono::duration<double>(Clock::now() - d0).count();
  std::printf("drain: %d events in %.2f s (%.0f/s), %.2fx the baseline\n", n, drain, n / drain, drain / base);
  result["outbox_fill_seconds"] = fill_s;
  result["drain_seconds"] = drain;
  result["drain_events_per_second"] = n / drain;
  result["drain_vs_baseline"] = drain / base;

  // Sustained: offered `rate` events/s for `seconds`, latency at a consumer.
  char err[512];
  rd_kafka_conf_t* cc = rd_kafka_conf_new();
  for (const auto& [k, v] : std::map<std::string, std::string>{{"bootstrap.servers", brokers()},
                                                                {"group.id", "bench-" + run},
                                                                {"auto.offset.reset", "latest"},
                                                                {"fetch.wait.max.ms", "10"}}) {
    rd_kafka_conf_set(cc, k.c_str(), v.c_str(), err, sizeof err);
  }
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err);
  rd_kafka_poll_set_consumer(consumer);
  auto* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, kc.topic.c_str(), 0)->offset = RD_KAFKA_OFFSET_END;
  rd_kafka_assign(consumer, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  // Wait until the consumer is positioned (its first poll round trips).
  for (int i = 0; i < 20; ++i) {
    if (auto* m = rd_kafka_consumer_poll(consumer, 100)) rd_kafka_message_destroy(m);
  }
  std::vector<double> lat_us;
  std::atomic<bool> producing{true};
  std::atomic<long> offered{0};
  const auto s0 = Clock::now();
  std::thread writer([&] {
    const int per_tick = std::max(1, rate / 100);  // every 10 ms
    auto next = Clock::now();
    int i = 0;
    while (Clock::now() - s0 < std::chrono::seconds(seconds)) {
      std::vector<Event> batch;
      for (int j = 0; j < per_tick; ++j) batch.push_back(sample(i++));
      store.appendEvents(std::move(batch), nullptr);
      offered += per_tick;
      next += std::chrono::milliseconds(10);
      std::this_thread::sleep_until(next);
    }
    producing = false;
  });
  long consumed = 0;
  auto last = Clock::now();
  while (producing || (consumed < offered && Clock::now() - last < std::chrono::seconds(10))) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const auto j = nlohmann::json::parse(std::string(static_cast<const char*>(m->payload), m->len));
      // The event's timestamp is its commit time; now - it = outbox + relay + broker + consumer.
      const std::string ts = j.at("timestamp");
      std::tm tm{};
      strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
      const std::int64_t ns = static_cast<std::int64_t>(timegm(&tm)) * 1'000'000'000 + std::stoll(ts.substr(20, 9));
      lat_us.push_back(static_cast<double>(nowNs() - ns) / 1000.0);
      ++consumed;
      last = Clock::now();
    }
    rd_kafka_message_destroy(m);
  }
  writer.join();
  const double span = std::chrono::duration<double>(last - s0).count();
  const auto sum = dspy::bench::summarize(lat_us, span);
  std::printf("sustained: offered %ld at %d/s for %d s; consumed %ld (%.0f/s); latency p50 %.1f ms p99 %.1f ms\n",
              offered.load(), rate, seconds, consumed, consumed / span, sum.p50_us / 1000, sum.p99_us / 1000);
  result["sustained"] = {{"offered_rate", rate},
                         {"offered", offered.load()},
                         {"consumed", consumed},
                         {"consumed_per_second", consumed / span},
                         {"latency", dspy::bench::toJson(sum)}};
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  relay.value()->stop();
  dspy::bench::writeJson(out + "/b6_events.json", result);
  return 0;
}
