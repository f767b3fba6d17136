#include "orchestrator/events/KafkaRelay.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <cstdint>
#include <fstream>
#include <future>
#include <unordered_map>

#include "common/Backoff.h"

namespace dspy::orchestrator {

struct KafkaRelay::Impl {
  KafkaConfig cfg;
  EventLog& log;
  EventHub& hub;
  rd_kafka_t* rk = nullptr;

  std::mutex rk_mu;  // held while polling and while swapping the producer
  mutable std::mutex mu;
  std::condition_variable_any cv;  // delivery reports arrived / restart wanted
  std::vector<std::int64_t> delivered;  // reported, not yet marked in the store
  std::unordered_map<std::int64_t, std::string> spool_lines;  // in flight, when spooling
  std::int64_t inflight = 0;
  bool restart = false;  // a delivery failed: drain, then start from the oldest pending
  bool fatal = false;    // the producer instance is unusable: make a new one
  Stats stats;
  std::string broker_state = "not connected yet";
  std::string spool_day;
  std::ofstream spool;

  std::jthread relay, poller;

  Impl(const KafkaConfig& c, EventLog& l, EventHub& h) : cfg(c), log(l), hub(h) {}

  Result<rd_kafka_t*> makeProducer() {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    auto set = [&](const std::string& k, const std::string& v) -> Status {
      if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
        return Error{"kafka setting '" + k + "': " + err, ErrorKind::InvalidArgument};
      }
      return Status::Ok();
    };
    std::vector<std::pair<std::string, std::string>> settings{
        {"bootstrap.servers", cfg.brokers},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", std::to_string(cfg.linger_ms)},
        {"batch.size", std::to_string(cfg.batch_bytes)},
        {"compression.codec", cfg.compression},
        {"message.timeout.ms", std::to_string(cfg.message_timeout_ms)},
        {"client.id", "dspy-orchestrator"},
    };
    for (const auto& [k, v] : cfg.properties) settings.emplace_back(k, v);
    for (const auto& [k, v] : settings) {
      if (Status s = set(k, v); !s.ok()) {
        rd_kafka_conf_destroy(conf);
        return s.fullError();
      }
    }
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
      static_cast<Impl*>(opaque)->onDelivery(m);
    });
    rd_kafka_conf_set_error_cb(conf, [](rd_kafka_t* k, int code, const char* reason, void* opaque) {
      static_cast<Impl*>(opaque)->onError(k, code, reason);
    });
    rd_kafka_t* p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);  // takes conf
    if (p == nullptr) return Error{std::string("kafka producer: ") + err, ErrorKind::InvalidArgument};
    return p;
  }

  void onDelivery(const rd_kafka_message_t* m) {
    const auto seq = static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(m->_private));
    std::lock_guard lock(mu);
    --inflight;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      delivered.push_back(seq);
      ++stats.delivered;
      broker_state = "delivering";
    } else {
      ++stats.failed;
      stats.last_error = rd_kafka_err2str(m->err);
      spool_lines.erase(seq);
      if (!restart) spdlog::warn("kafka: event {} not delivered ({}); will send again", seq, stats.last_error);
      restart = true;
    }
    cv.notify_all();
  }

  void onError(rd_kafka_t* k, int code, const char* reason) {
    std::lock_guard lock(mu);
    broker_state = std::string("waiting for brokers: ") + reason;
    stats.last_error = reason;
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      rd_kafka_fatal_error(k, buf, sizeof buf);
      spdlog::error("kafka producer fatal error: {}; a new producer takes over", buf);
      fatal = restart = true;
    }
    cv.notify_all();
  }

  // Marks what was reported delivered (and spools it); on the poll thread or at stop.
  void markReported(bool wait) {
    std::vector<std::int64_t> seqs;
    std::vector<std::string> lines;
    {
      std::lock_guard lock(mu);
      seqs.swap(delivered);
      if (!cfg.spool_dir.empty()) {
        for (auto s : seqs) {
          auto it = spool_lines.find(s);
          if (it == spool_lines.end()) continue;
          lines.push_back(std::move(it->second));
          spool_lines.erase(it);
        }
      }
    }
    if (seqs.empty()) return;
    if (!lines.empty()) writeSpool(lines);
    auto done = std::make_shared<std::promise<Status>>();
    auto f = done->get_future();
    log.markDelivered(std::move(seqs), [done](Status s) {
      if (!s.ok()) spdlog::error("outbox: could not mark events delivered: {}", s.error());
      done->set_value(s);
    });
    if (wait) f.wait();
  }

  // The old layout: one JSONL file per day, <spool_dir>/events-YYYY-MM-DD.jsonl.
  void writeSpool(const std::vector<std::string>& lines) {
    const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&now, &tm);
    char day[16];
    std::strftime(day, sizeof day, "%Y-%m-%d", &tm);
    if (day != spool_day) {
      spool.close();
      spool.open(cfg.spool_dir + "/events-" + day + ".jsonl", std::ios::app);
      spool_day = day;
      if (!spool) spdlog::error("kafka spool: cannot write in {}", cfg.spool_dir);
    }
    for (const auto& l : lines) spool << l << '\n';
    spool.flush();
  }

  void pollLoop(std::stop_token stop) {
    while (!stop.stop_requested()) {
      {
        std::lock_guard lock(rk_mu);
        rd_kafka_poll(rk, 100);
      }
      markReported(false);
    }
  }

  bool waitDrained(std::stop_token stop) {
    std::unique_lock lock(mu);
    return cv.wait(lock, stop, [&] { return inflight == 0; });
  }

  void relayLoop(std::stop_token stop) {
    Backoff backoff(BackoffPolicy{.initial = std::chrono::milliseconds(200), .max = std::chrono::milliseconds(10'000)});
    std::int64_t cursor = 0;  // the last seq handed to librdkafka
    while (!stop.stop_requested()) {
      bool restarting, make_new;
      {
        std::lock_guard lock(mu);
        restarting = restart;
        make_new = fatal;
      }
      if (restarting) {
        if (!waitDrained(stop)) return;
        markReported(true);
        {
          std::unique_lock lock(mu);
          (void)cv.wait_for(lock, stop, backoff.next(), [] { return false; });
        }
        if (stop.stop_requested()) return;
        if (make_new) {
          auto p = makeProducer();
          if (p) {
            rd_kafka_t* old = nullptr;
            {
              std::lock_guard rk_lock(rk_mu);
              std::lock_guard lock(mu);
              old = rk;
              rk = p.value();
              fatal = false;
            }
            rd_kafka_destroy(old);  // nothing in flight
          }
        }
        std::lock_guard lock(mu);
        restart = false;
        ++stats.restarts;
        cursor = 0;
        continue;
      }
      auto batch = log.readEvents(cursor, 2000, true);
      if (!batch) {
        spdlog::error("outbox: cannot read pending events: {}", batch.error());
        std::unique_lock lock(mu);
        (void)cv.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; });
        continue;
      }
      if (batch.value().empty()) {
        hub.waitBeyond(cursor, stop, std::chrono::seconds(1));
        continue;
      }
      for (const auto& e : batch.value()) {
        if (!produce(e, stop)) break;
        cursor = e.seq;
      }
      backoff.reset();
    }
  }

  // Hands one event to librdkafka, waiting while its queue is full. False to go back to
  // the loop (stop or restart).
  bool produce(const Event& e, std::stop_token stop) {
    std::string value = eventJson(e);
    while (true) {
      std::unique_lock lock(mu);
      if (restart || stop.stop_requested()) return false;
      if (!cfg.spool_dir.empty()) spool_lines[e.seq] = value;
      ++inflight;
      ++stats.produced;
      const rd_kafka_resp_err_t err = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(cfg.topic.c_str()),
          RD_KAFKA_V_KEY(const_cast<char*>(e.resource_id.data()), e.resource_id.size()),
          RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<std::intptr_t>(e.seq))), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return true;
      --inflight;
      --stats.produced;
      spool_lines.erase(e.seq);
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        stats.last_error = rd_kafka_err2str(err);
        spdlog::error("kafka: cannot produce event {}: {}", e.seq, stats.last_error);
        restart = true;
        return false;
      }
      // librdkafka's queue is full (the broker is slow or away): wait for deliveries.
      (void)cv.wait_for(lock, stop, std::chrono::milliseconds(100), [&] { return restart; });
    }
  }
};

KafkaRelay::KafkaRelay(const KafkaConfig& cfg, EventLog& log, EventHub& hub)
    : impl_(std::make_unique<Impl>(cfg, log, hub)) {}

Result<std::unique_ptr<KafkaRelay>> KafkaRelay::create(const KafkaConfig& cfg, EventLog& log, EventHub& hub) {
  if (cfg.brokers.empty()) return Error{"kafka: no brokers configured", ErrorKind::InvalidArgument};
  if (cfg.topic.empty()) return Error{"kafka: the topic is empty", ErrorKind::InvalidArgument};
  std::unique_ptr<KafkaRelay> r(new KafkaRelay(cfg, log, hub));
  auto p = r->impl_->makeProducer();
  if (!p) return p.fullError();
  r->impl_->rk = p.value();
  return r;
}

KafkaRelay::~KafkaRelay() {
  stop();
  if (impl_->rk != nullptr) rd_kafka_destroy(impl_->rk);
}

void KafkaRelay::start() {
  impl_->poller = std::jthread([this](std::stop_token st) { impl_->pollLoop(st); });
  impl_->relay = std::jthread([this](std::stop_token st) { impl_->relayLoop(st); });
}

std::int64_t KafkaRelay::stop() {
  Impl& i = *impl_;
  if (!i.relay.joinable() && !i.poller.joinable()) return i.log.outboxStats().pending;
  i.relay.request_stop();
  if (i.relay.joinable()) i.relay.join();
  i.poller.request_stop();
  if (i.poller.joinable()) i.poller.join();
  const auto t0 = std::chrono::steady_clock::now();
  const rd_kafka_resp_err_t err = rd_kafka_flush(i.rk, static_cast<int>(i.cfg.flush_timeout_ms));
  i.markReported(true);
  const auto pending = i.log.outboxStats().pending;
  spdlog::info("kafka relay stopped: flush {} in {} ms; {} event(s) stay pending in the outbox",
               err == RD_KAFKA_RESP_ERR_NO_ERROR ? "complete" : rd_kafka_err2str(err),
               std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count(),
               pending);
  return pending;
}

KafkaRelay::Stats KafkaRelay::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stats;
}

std::string KafkaRelay::state() const {
  std::lock_guard lock(impl_->mu);
  return impl_->broker_state;
}

}  // namespace dspy::orchestrator
