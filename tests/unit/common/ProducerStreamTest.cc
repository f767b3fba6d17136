// ProducerStream, the server-streaming reactor every streaming RPC uses: everything the
// producer writes arrives in order, a client that leaves stops the producer, a failed
// stream carries its status.
#include <catch2/catch.hpp>

#include <grpcpp/grpcpp.h>

#include <atomic>

#include "common/GrpcStream.h"
#include "env_manager/v1/env_manager.grpc.pb.h"
#include "tests/support/Process.h"

using namespace std::chrono_literals;
namespace pb = env_manager::v1;

namespace {

// StreamLogs: tail=N writes N entries and ends; tail=0 writes until the client leaves;
// an empty service name fails at once.
class LogService final : public pb::EnvManagerService::CallbackService {
 public:
  std::atomic<bool> producer_saw_stop{false};
  std::atomic<int> written{0};

  grpc::ServerWriteReactor<pb::LogEntry>* StreamLogs(grpc::CallbackServerContext*,
                                                     const pb::StreamLogsRequest* req) override {
    if (req->service_name().empty()) {
      return dspy::ProducerStream<pb::LogEntry>::failed({grpc::StatusCode::INVALID_ARGUMENT, "service_name is required"});
    }
    const int n = req->tail();
    return new dspy::ProducerStream<pb::LogEntry>(
        [this, n](const dspy::ProducerStream<pb::LogEntry>::Write& write, std::stop_token stop) {
          for (int i = 0; n == 0 || i < n; ++i) {
            pb::LogEntry e;
            e.set_message("line " + std::to_string(i));
            if (!write(e)) break;
            ++written;
          }
          producer_saw_stop = stop.stop_requested() || n == 0;
          return grpc::Status::OK;
        });
  }
};

struct Rig {
  LogService service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<pb::EnvManagerService::Stub> stub;
  Rig() {
    int port = 0;
    grpc::ServerBuilder b;
    // A port below the ephemeral range, like every test port (tests/support/Process.h).
    b.AddListeningPort("127.0.0.1:" + std::to_string(dspy::test::freePort()), grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&service);
    server = b.BuildAndStart();
    REQUIRE(server != nullptr);
    stub = pb::EnvManagerService::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  }
  ~Rig() { server->Shutdown(std::chrono::system_clock::now() + 2s); }
};

}  // namespace

TEST_CASE("a producer's messages all arrive, in order, then its status", "[grpc-stream]") {
  Rig rig;
  grpc::ClientContext ctx;
  pb::StreamLogsRequest req;
  req.set_service_name("redis");
  req.set_tail(500);
  auto reader = rig.stub->StreamLogs(&ctx, req);
  pb::LogEntry e;
  int i = 0;
  while (reader->Read(&e)) {
    REQUIRE(e.message() == "line " + std::to_string(i));
    ++i;
  }
  CHECK(reader->Finish().ok());
  CHECK(i == 500);
}

TEST_CASE("a client that leaves stops the producer", "[grpc-stream]") {
  Rig rig;
  {
    grpc::ClientContext ctx;
    pb::StreamLogsRequest req;
    req.set_service_name("redis");
    req.set_tail(0);  // endless
    auto reader = rig.stub->StreamLogs(&ctx, req);
    pb::LogEntry e;
    for (int i = 0; i < 3; ++i) REQUIRE(reader->Read(&e));
    ctx.TryCancel();
    while (reader->Read(&e)) {
    }
    CHECK(reader->Finish().error_code() == grpc::StatusCode::CANCELLED);
  }
  REQUIRE(dspy::test::eventually([&] { return rig.service.producer_saw_stop.load(); }, 5s));
  // Writes block while one is in flight, so the producer ran at most a few ahead.
  const int written = rig.service.written;
  CHECK(written >= 3);
  CHECK(written < 1000);
}

TEST_CASE("a stream refused up front carries its status and no message", "[grpc-stream]") {
  Rig rig;
  grpc::ClientContext ctx;
  pb::StreamLogsRequest req;
  auto reader = rig.stub->StreamLogs(&ctx, req);
  pb::LogEntry e;
  CHECK_FALSE(reader->Read(&e));
  const auto st = reader->Finish();
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message() == "service_name is required");
}
