// The test environment's Kafka broker is real: a message produced with librdkafka to
// KAFKA_BROKERS (default 127.0.0.1:39092) is consumed back.
#include <librdkafka/rdkafka.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>

namespace {

std::string brokers() {
  const char* b = std::getenv("KAFKA_BROKERS");
  // scripts/test-env.sh runs the broker on 39092, a port the demo stack never holds.
  return (b != nullptr && *b != '\0') ? b : "127.0.0.1:39092";
}

rd_kafka_conf_t* baseConf() {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  REQUIRE(rd_kafka_conf_set(conf, "bootstrap.servers", brokers().c_str(), err, sizeof err) == RD_KAFKA_CONF_OK);
  return conf;
}

}  // namespace

TEST_CASE("a message produced to the real broker is consumed back", "[kafka][env]") {
  std::mt19937_64 rng(std::random_device{}());
  const std::string suffix = std::to_string(rng());
  const std::string topic = "dspy.smoke." + suffix;
  const std::string payload = "hello-" + suffix;
  char err[512];

  // Produce one message and wait for the broker's acknowledgement.
  rd_kafka_conf_t* pconf = baseConf();
  REQUIRE(rd_kafka_conf_set(pconf, "acks", "all", err, sizeof err) == RD_KAFKA_CONF_OK);
  REQUIRE(rd_kafka_conf_set(pconf, "message.timeout.ms", "20000", err, sizeof err) == RD_KAFKA_CONF_OK);
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof err);
  REQUIRE(producer != nullptr);
  rd_kafka_resp_err_t perr = rd_kafka_producev(
      producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_VALUE(const_cast<char*>(payload.data()), payload.size()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  REQUIRE(perr == RD_KAFKA_RESP_ERR_NO_ERROR);
  const rd_kafka_resp_err_t flushed = rd_kafka_flush(producer, 30000);
  INFO("flush: " << rd_kafka_err2str(flushed));
  REQUIRE(flushed == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(producer);

  // Consume it back from the beginning of the topic.
  rd_kafka_conf_t* cconf = baseConf();
  REQUIRE(rd_kafka_conf_set(cconf, "group.id", ("smoke-" + suffix).c_str(), err, sizeof err) == RD_KAFKA_CONF_OK);
  REQUIRE(rd_kafka_conf_set(cconf, "auto.offset.reset", "earliest", err, sizeof err) == RD_KAFKA_CONF_OK);
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, err, sizeof err);
  REQUIRE(consumer != nullptr);
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic.c_str(), RD_KAFKA_PARTITION_UA);
  REQUIRE(rd_kafka_subscribe(consumer, topics) == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(topics);

  std::string received;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (received.empty() && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* msg = rd_kafka_consumer_poll(consumer, 500);
    if (msg == nullptr) continue;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      received.assign(static_cast<const char*>(msg->payload), msg->len);
    }
    rd_kafka_message_destroy(msg);
  }
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  CHECK(received == payload);
}
