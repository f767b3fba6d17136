#include "cli/EventsCommands.h"

#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <atomic>
#include <cctype>
#include <optional>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/Addresses.h"
#include "cli/GrpcClient.h"
#include "common/Text.h"
#include "orchestrator/events/Event.h"
#include "orchestrator/v1/orchestrator.grpc.pb.h"

namespace dspy::cli {
namespace {

namespace pb = ::orchestrator::v1;

struct Options {
  std::string addr;
  std::vector<std::string> types;
  std::string since = "10m";
  bool follow = false;
  bool json = false;
};

std::int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "30s", "10m", "2h", "1d" ago; "0" or "now" = live only; unix seconds; or RFC3339 UTC
// ("2026-11-27T06:00:00Z"). Unix nanoseconds, or nullopt when it is none of those.
std::optional<std::int64_t> parseSince(const std::string& text) {
  if (text == "now" || text == "0") return 0;
  if (text.size() >= 2 && std::isdigit(static_cast<unsigned char>(text.front()))) {
    const char unit = text.back();
    const std::int64_t mult = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : unit == 'd' ? 86400 : 0;
    if (mult > 0) {
      auto n = parseInt(text.substr(0, text.size() - 1), 0, 100LL * 365 * 86400);
      if (!n) return std::nullopt;
      return nowNs() - *n * mult * 1'000'000'000;
    }
  }
  if (auto secs = parseInt(text, 1, 100'000'000'000LL)) return *secs * 1'000'000'000;
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr || (*end != 'Z' && *end != '\0') || (*end == 'Z' && end[1] != '\0')) return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm)) * 1'000'000'000;
}

nlohmann::json toJson(const pb::SystemEvent& e) {
  return {{"type", e.event_type()},
          {"timestamp", orchestrator::rfc3339Ns(e.timestamp_ns())},
          {"data", std::map<std::string, std::string>(e.data().begin(), e.data().end())},
          {"source", e.source()},
          {"event_id", e.event_id()},
          {"sequence", e.sequence()}};
}

void print(const pb::SystemEvent& e, bool json) {
  if (json) {
    std::printf("%s\n", toJson(e).dump().c_str());
  } else {
    std::printf("%s  %-24s %-36s", orchestrator::rfc3339Ns(e.timestamp_ns()).c_str(), e.event_type().c_str(),
                e.resource_id().c_str());
    const std::map<std::string, std::string> data(e.data().begin(), e.data().end());
    for (const auto& [k, v] : data) {
      if (k == "resource_id" || k == "task_id" || k == "run_id" || v.empty()) continue;
      std::printf(" %s=%s", k.c_str(), v.size() > 80 ? (v.substr(0, 77) + "...").c_str() : v.c_str());
    }
    std::printf("\n");
  }
  std::fflush(stdout);
}

int events(pb::OrchestratorService::Stub& stub, const Options& o) {
  const auto since = parseSince(o.since);
  if (!since) {
    std::fprintf(stderr, "--since: '%s' is not a duration (30s, 10m, 2h, 1d), unix seconds or RFC3339 UTC time\n",
                 o.since.c_str());
    return 2;
  }
  const std::int64_t started = nowNs();
  grpc::ClientContext ctx;
  withToken(ctx);
  pb::StreamEventsRequest req;
  for (const auto& t : o.types) req.add_event_types(t);
  req.set_since_timestamp_ns(*since);
  auto reader = stub.StreamEvents(&ctx, req);
  // Without --follow the command ends once the replay caught up with the time it
  // started, or the stream was quiet for a second after that.
  std::atomic<std::int64_t> last_read{nowNs()};
  std::atomic<bool> done{false};
  std::thread quiet;
  if (!o.follow) {
    quiet = std::thread([&] {
      while (!done) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (nowNs() - last_read > 1'000'000'000) {
          ctx.TryCancel();
          return;
        }
      }
    });
  }
  pb::SystemEvent e;
  bool caught_up = false;
  while (reader->Read(&e)) {
    last_read = nowNs();
    if (!o.follow && e.timestamp_ns() >= started) {
      caught_up = true;
      break;
    }
    print(e, o.json);
  }
  done = true;
  if (caught_up) ctx.TryCancel();
  if (quiet.joinable()) quiet.join();
  const grpc::Status s = reader->Finish();
  if (!s.ok() && s.error_code() != grpc::StatusCode::CANCELLED) return failed(s, "events");
  return 0;
}

}  // namespace

void addEventsCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<Options>();
  CLI::App* c = app.add_subcommand(
      "events", "the orchestrator's events: those since --since (default 10m), then live with --follow");
  o->addr = defaultAddresses().orch_grpc;
  c->add_option("--addr", o->addr, "the orchestrator's gRPC address (now " + o->addr +
                                       "; from $ORCHESTRATOR_ADDR, else its config file, else the default)");
  c->add_option("--type,-t", o->types, "only these types (repeatable; a trailing * matches a prefix: task_*)");
  c->add_option("--since", o->since, "30s, 10m, 2h, 1d ago; unix seconds; RFC3339 UTC; or now (live only)");
  c->add_flag("--follow,-f", o->follow, "keep following new events until interrupted");
  c->add_flag("--json", o->json, "one JSON object per line: the event as on Kafka");
  c->footer("A bearer token is read from $DSPY_AGENT_TOKEN.");
  c->callback(runCommand<pb::OrchestratorService>(o, "orchestrator", exit_code, &events));
}

}  // namespace dspy::cli
