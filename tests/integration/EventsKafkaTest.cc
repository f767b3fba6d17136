// Events reach a real Kafka broker: a workload's events arrive in order per key and each
// event id once; a broker that is away for 30 s in the middle of a burst loses nothing;
// an orchestrator killed with SIGKILL mid-burst and started again loses nothing. The
// broker-outage test runs a private broker (scripts/private-kafka.sh), never the shared
// one. Consumers are librdkafka consumers reading each test's own topic from the start.
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "orchestrator/v1/orchestrator.grpc.pb.h"
#include "tests/support/Process.h"

using namespace std::chrono_literals;
using dspy::test::ChildProcess;
using dspy::test::eventually;
namespace pb = ::orchestrator::v1;

namespace {

std::string sharedBrokers() {
  const char* b = std::getenv("KAFKA_BROKERS");
  return (b != nullptr && *b != '\0') ? b : "127.0.0.1:39092";
}

std::string uniqueTopic(const std::string& what) {
  std::mt19937_64 rng(std::random_device{}());
  return "dspy.test." + what + "." + std::to_string(rng() % 1'000'000'000);
}

// An orchestrator whose tasks run on the noop executor, publishing to `brokers`/`topic`.
class Orchestrator {
 public:
  Orchestrator(const std::string& brokers, const std::string& topic, std::string dir = dspy::test::tempDir(),
               const std::string& kafka_extra = "")
      : dir_(std::move(dir)), brokers_(brokers), grpc_port_(dspy::test::freePort()), http_port_(dspy::test::freePort()) {
    dspy::test::writeFile(dir_ + "/config.yaml",
                          "grpc:\n  address: 127.0.0.1:" + std::to_string(grpc_port_) +
                              "\nhttp:\n  address: 127.0.0.1:" + std::to_string(http_port_) +
                              "\nstore:\n  dir: " + dir_ + "/state\n" +
                              "env_manager:\n  address: 127.0.0.1:" + std::to_string(dspy::test::freePort()) + "\n" +
                              "tasks:\n  classes:\n    cpu_short:\n      executor: noop\n"
                              "      limiter: {kind: fixed, initial: 16, min: 1, max: 16}\n"
                              "kafka:\n  brokers: " + brokers + "\n  topic: " + topic + "\n  linger_ms: 5\n" + kafka_extra);
    start();
  }
  void start() {
    proc_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{dspy::test::binary("orchestrator/orchestrator"), "--config", dir_ + "/config.yaml"},
        std::map<std::string, std::string>{{"KAFKA_BROKERS", brokers_}}, dir_ + "/daemon.log");  // env wins over the file
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port_), grpc::InsecureChannelCredentials());
    stub_ = pb::OrchestratorService::NewStub(channel_);
    const bool up = eventually([&] { return health().ok() || !proc_->running(); }, 15s) && proc_->running();
    INFO(proc_->log());
    REQUIRE(up);
  }
  grpc::Status health(pb::HealthResponse* out = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    pb::HealthResponse resp;
    auto s = stub_->Health(&ctx, {}, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }
  std::string outbox() {
    pb::HealthResponse h;
    return health(&h).ok() && h.services().count("outbox") ? h.services().at("outbox") : "";
  }
  bool submit(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    pb::SubmitTaskRequest req;
    req.set_id(id);
    req.set_class_("cpu_short");
    pb::SubmitTaskResponse resp;
    return stub_->SubmitTask(&ctx, req, &resp).ok() && resp.success();
  }
  ChildProcess& proc() { return *proc_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::string brokers_;
  int grpc_port_, http_port_;
  std::unique_ptr<ChildProcess> proc_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::OrchestratorService::Stub> stub_;
};

struct Received {
  std::string key;
  nlohmann::json event;
};

// Reads `topic` from its start until `done(all so far)` or the deadline.
std::vector<Received> consume(const std::string& brokers, const std::string& topic,
                              const std::function<bool(const std::vector<Received>&)>& done,
                              std::chrono::seconds deadline) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const std::string group = topic + ".reader";
  for (const auto& [k, v] : std::map<std::string, std::string>{{"bootstrap.servers", brokers},
                                                                {"group.id", group},
                                                                {"auto.offset.reset", "earliest"},
                                                                {"enable.auto.commit", "false"}}) {
    REQUIRE(rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) == RD_KAFKA_CONF_OK);
  }
  rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  REQUIRE(c != nullptr);
  rd_kafka_poll_set_consumer(c);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic.c_str(), RD_KAFKA_PARTITION_UA);
  REQUIRE(rd_kafka_subscribe(c, topics) == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(topics);
  std::vector<Received> out;
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!done(out) && std::chrono::steady_clock::now() < end) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 200);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      Received r;
      r.key.assign(static_cast<const char*>(m->key), m->key_len);
      r.event = nlohmann::json::parse(std::string(static_cast<const char*>(m->payload), m->len));
      out.push_back(std::move(r));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
  return out;
}

std::size_t uniqueIds(const std::vector<Received>& rs) {
  std::set<std::string> ids;
  for (const auto& r : rs) ids.insert(r.event.at("event_id").get<std::string>());
  return ids.size();
}

// Every task's events in order: submitted (1), started (2), completed (3), keyed by task.
void checkOrderPerTask(const std::vector<Received>& rs, const std::set<std::string>& tasks) {
  std::map<std::string, std::vector<std::pair<std::int64_t, std::string>>> by_key;
  for (const auto& r : rs) {
    CHECK(r.key == r.event.at("data").at("resource_id"));
    by_key[r.key].emplace_back(r.event.at("sequence").get<std::int64_t>(), r.event.at("type").get<std::string>());
  }
  for (const auto& id : tasks) {
    const auto& seen = by_key[id];
    INFO("task " << id);
    REQUIRE(seen.size() >= 3);
    for (std::size_t i = 0; i < seen.size(); ++i) CHECK(seen[i].first == static_cast<std::int64_t>(i + 1));
    CHECK(seen[0].second == "task_submitted");
    CHECK(seen[1].second == "task_started");
    CHECK(seen.back().second == "task_completed");
  }
}

// The event ids in an orchestrator's outbox (read beside the running daemon: WAL).
std::set<std::string> outboxIds(const std::string& dir) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2((dir + "/state/orchestrator.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  std::set<std::string> ids;
  sqlite3_exec(
      db, "SELECT event_id FROM outbox",
      [](void* out, int, char** v, char**) {
        static_cast<std::set<std::string>*>(out)->insert(v[0]);
        return 0;
      },
      &ids, nullptr);
  sqlite3_close(db);
  return ids;
}

}  // namespace

TEST_CASE("a workload's events reach Kafka in order per key, each event id once", "[kafka][events]") {
  const std::string topic = uniqueTopic("order");
  Orchestrator orch(sharedBrokers(), topic);
  std::set<std::string> tasks;
  for (int i = 0; i < 300; ++i) {
    const std::string id = "t" + std::to_string(i);
    REQUIRE(orch.submit(id));
    tasks.insert(id);
  }
  const auto got = consume(
      sharedBrokers(), topic, [](const std::vector<Received>& rs) { return rs.size() >= 900; }, 90s);
  INFO(orch.proc().log());
  REQUIRE(got.size() == 900);
  CHECK(uniqueIds(got) == 900);
  checkOrderPerTask(got, tasks);
  CHECK(eventually([&] { return orch.outbox() == "0 event(s) pending"; }, 20s));
}

TEST_CASE("a broker away for 30 s in the middle of a burst: every event arrives", "[kafka][events][chaos]") {
  const std::string kdir = dspy::test::tempDir() + "/kafka";
  const int port = dspy::test::freePort(), cport = dspy::test::freePort();
  const std::string script = std::string(DSPY_SOURCE_DIR) + "/scripts/private-kafka.sh";
  auto kafka = [&](const std::string& cmd) {
    return std::system(("bash " + script + " " + cmd + " " + kdir + " " + std::to_string(port) + " " +
                        std::to_string(cport))
                           .c_str());
  };
  REQUIRE(kafka("up") == 0);
  struct Down {
    std::function<int(const std::string&)> k;
    ~Down() { k("down"); }
  } down{kafka};
  const std::string brokers = "127.0.0.1:" + std::to_string(port);
  const std::string topic = uniqueTopic("outage");
  Orchestrator orch(brokers, topic);
  std::set<std::string> tasks;
  for (int i = 0; i < 500; ++i) {
    tasks.insert("a" + std::to_string(i));
    REQUIRE(orch.submit("a" + std::to_string(i)));
  }
  REQUIRE(kafka("stop") == 0);
  // Work is still accepted while the broker is away; its events wait in the outbox.
  for (int i = 0; i < 500; ++i) {
    tasks.insert("b" + std::to_string(i));
    REQUIRE(orch.submit("b" + std::to_string(i)));
  }
  CHECK(eventually([&] { return orch.outbox() != "0 event(s) pending" && !orch.outbox().empty(); }, 10s));
  std::this_thread::sleep_for(30s);  // the outage itself (not a wait for an event)
  REQUIRE(kafka("start") == 0);
  const auto got = consume(
      brokers, topic, [](const std::vector<Received>& rs) { return uniqueIds(rs) >= 3000; }, 180s);
  INFO(orch.proc().log());
  const auto unique = uniqueIds(got);
  WARN("broker outage: " << got.size() << " messages, " << unique << " distinct event ids, "
                         << got.size() - unique << " duplicates");
  CHECK(unique == 3000);
  CHECK(got.size() - unique == 0);  // the idempotent producer sent none twice
  checkOrderPerTask(got, tasks);
  CHECK(eventually([&] { return orch.outbox() == "0 event(s) pending"; }, 30s));
}

TEST_CASE("an orchestrator killed mid-burst and started again loses no event", "[kafka][events][chaos]") {
  const std::string topic = uniqueTopic("kill");
  const std::string dir = dspy::test::tempDir();
  std::set<std::string> accepted;
  {
    Orchestrator orch(sharedBrokers(), topic, dir);
    std::atomic<bool> stop{false};
    std::thread submitter([&] {
      for (int i = 0; i < 2000 && !stop; ++i) {
        if (orch.submit("k" + std::to_string(i))) accepted.insert("k" + std::to_string(i));
      }
    });
    REQUIRE(eventually([&] { return outboxIds(dir).size() >= 600; }, 30s));
    orch.proc().signal(SIGKILL);
    stop = true;
    submitter.join();
    REQUIRE(orch.proc().waitExit(10s).has_value());
  }
  REQUIRE(accepted.size() >= 100);
  Orchestrator again(sharedBrokers(), topic, dir);
  CHECK(eventually([&] { return again.outbox() == "0 event(s) pending"; }, 60s));
  const auto stored = outboxIds(dir);
  const auto got = consume(
      sharedBrokers(), topic,
      [&](const std::vector<Received>& rs) {
        std::set<std::string> ids;
        for (const auto& r : rs) ids.insert(r.event.at("event_id").get<std::string>());
        return std::includes(ids.begin(), ids.end(), stored.begin(), stored.end());
      },
      90s);
  std::set<std::string> ids, submitted;
  for (const auto& r : got) {
    ids.insert(r.event.at("event_id").get<std::string>());
    if (r.event.at("type") == "task_submitted") submitted.insert(r.key);
  }
  std::size_t missing = 0;
  for (const auto& id : stored) missing += ids.count(id) == 0 ? 1 : 0;
  WARN("kill -9: " << accepted.size() << " tasks accepted, " << stored.size() << " events stored, " << missing
                   << " missing from the topic, " << got.size() - ids.size() << " duplicates");
  CHECK(missing == 0);
  for (const auto& t : accepted) {
    INFO("accepted task " << t);
    CHECK(submitted.count(t) == 1);  // accepted means durable, with its event
  }
}

TEST_CASE("SIGTERM with the broker away: a bounded flush, events stay pending, then arrive after a restart",
          "[kafka][events]") {
  const std::string topic = uniqueTopic("term");
  const std::string dir = dspy::test::tempDir();
  const std::string spool = dir + "/spool";
  REQUIRE(std::system(("mkdir -p " + spool).c_str()) == 0);
  const std::string nowhere = "127.0.0.1:" + std::to_string(dspy::test::freePort());
  const std::string extra = "  flush_timeout_ms: 1000\n  spool_dir: " + spool + "\n";
  {
    Orchestrator orch(nowhere, topic, dir, extra);
    for (int i = 0; i < 10; ++i) REQUIRE(orch.submit("s" + std::to_string(i)));
    REQUIRE(eventually([&] { return orch.outbox() == "30 event(s) pending"; }, 20s));
    pb::HealthResponse h;
    REQUIRE(orch.health(&h).ok());
    CHECK(h.healthy());  // work is accepted while Kafka is away
    const auto t0 = std::chrono::steady_clock::now();
    orch.proc().signal(SIGTERM);
    const auto code = orch.proc().waitExit(15s);
    INFO(orch.proc().log());
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);  // the flush is bounded
    CHECK_THAT(orch.proc().log(), Catch::Contains("30 event(s) stay pending in the outbox"));
  }
  CHECK(outboxIds(dir).size() == 30);
  Orchestrator again(sharedBrokers(), topic, dir, extra);
  CHECK(eventually([&] { return again.outbox() == "0 event(s) pending"; }, 60s));
  const auto got = consume(
      sharedBrokers(), topic, [](const std::vector<Received>& rs) { return rs.size() >= 30; }, 60s);
  CHECK(uniqueIds(got) == 30);
  // The JSONL spool has every delivered event, one JSON object per line.
  std::set<std::string> spooled;
  for (const auto& entry : std::filesystem::directory_iterator(spool)) {
    std::ifstream in(entry.path());
    for (std::string line; std::getline(in, line);) {
      spooled.insert(nlohmann::json::parse(line).at("event_id").get<std::string>());
    }
  }
  CHECK(spooled == outboxIds(dir));
}
