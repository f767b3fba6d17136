// The env-manager link.
#include "orchestrator/envmanager/EnvManagerClient.h"

#include <map>
#include "common/Clock.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <fstream>
#include <sstream>

#include "env_manager/v1/env_manager.grpc.pb.h"

namespace dspy::orchestrator {
namespace {

std::string stateName(grpc_connectivity_state s) {
  switch (s) {
    case GRPC_CHANNEL_IDLE: return "idle";
    case GRPC_CHANNEL_CONNECTING: return "connecting";
    case GRPC_CHANNEL_READY: return "ready";
    case GRPC_CHANNEL_TRANSIENT_FAILURE: return "unreachable";
    case GRPC_CHANNEL_SHUTDOWN: return "shutdown";
  }
  return "unknown";
}

}  // namespace

EnvManagerClient::EnvManagerClient(EnvManagerLinkConfig cfg, Clock& clock) : cfg_(std::move(cfg)), clock_(clock) {
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!cfg_.ca_file.empty()) {
    std::ifstream in(cfg_.ca_file);
    std::stringstream ss;
    ss << in.rdbuf();
    grpc::SslCredentialsOptions opts;
    opts.pem_root_certs = ss.str();
    creds = grpc::SslCredentials(opts);
  }
  grpc::ChannelArguments args;
  // Reconnect quickly after env-manager restarts; gRPC backs off up to this.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  channel_ = grpc::CreateCustomChannel(cfg_.address, creds, args);
  if (!cfg_.ensure_services.empty()) services_ = "waiting for env-manager";
}

EnvManagerClient::~EnvManagerClient() { stop(); }

void EnvManagerClient::start(bool needed) {
  if (!needed && cfg_.ensure_services.empty()) return;
  {
    std::lock_guard lock(mu_);
    link_ = "connecting";
  }
  watcher_ = std::jthread([this](std::stop_token st) { watch(st); });
  if (!cfg_.ensure_services.empty()) ensurer_ = std::jthread([this](std::stop_token st) { ensure(st); });
  if (service_listener_) followServices();
}

void EnvManagerClient::followServices() {
  std::lock_guard lock(mu_);
  if (!service_listener_ || stopped_ || health_follower_.joinable()) return;
  health_follower_ = std::jthread([this](std::stop_token st) { followHealth(st); });
}

Result<std::vector<ServiceSnapshot>> EnvManagerClient::servicesStatus(std::chrono::milliseconds timeout) {
  auto stub = env_manager::v1::EnvManagerService::NewStub(channel_);
  grpc::ClientContext ctx;
  addAuth(ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  env_manager::v1::GetServicesStatusRequest req;
  env_manager::v1::ServicesStatusResponse resp;
  const grpc::Status st = stub->GetServicesStatus(&ctx, req, &resp);
  if (!st.ok()) {
    return Error{"env-manager at " + cfg_.address + " did not answer GetServicesStatus: " + st.error_message(),
                 ErrorKind::Unavailable};
  }
  std::vector<ServiceSnapshot> out;
  for (const auto& [name, s] : resp.services()) {
    ServiceSnapshot v;
    v.name = name;
    v.status = s.status();
    v.container_id = s.container_id();
    v.ports.assign(s.ports().begin(), s.ports().end());
    v.health.insert(s.health_checks().begin(), s.health_checks().end());
    v.started_at = s.started_at();
    v.cpu_percent = s.resource_usage().cpu_percent();
    v.memory_bytes = s.resource_usage().memory_bytes();
    const auto& tl = s.last_start();
    v.requested_ms = tl.requested_at_ms();
    v.created_ms = tl.created_at_ms();
    v.start_called_ms = tl.started_at_ms();
    v.first_probe_ms = tl.first_probe_at_ms();
    v.ready_ms = tl.ready_at_ms();
    v.outcome = tl.outcome();
    out.push_back(std::move(v));
  }
  return out;
}

void EnvManagerClient::stop() {
  std::jthread follower;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    follower = std::move(health_follower_);
  }
  if (follower.joinable()) {
    follower.request_stop();
    follower.join();
  }
  if (ensurer_.joinable()) {
    ensurer_.request_stop();
    ensurer_.join();
  }
  if (watcher_.joinable()) {
    watcher_.request_stop();
    watcher_.join();
  }
}

void EnvManagerClient::watch(std::stop_token stop) {
  auto state = channel_->GetState(true);
  auto last_refresh = std::chrono::steady_clock::time_point{};
  while (!stop.stop_requested()) {
    {
      std::lock_guard lock(mu_);
      link_ = stateName(state);
    }
    if (state == GRPC_CHANNEL_READY && std::chrono::steady_clock::now() - last_refresh >= std::chrono::seconds(30)) {
      last_refresh = std::chrono::steady_clock::now();
      refreshHardware();
    }
    if (state != GRPC_CHANNEL_READY) channel_->GetState(true);  // keep trying to connect
    // Wakes on a change, or after 200 ms to notice a stop request.
    if (channel_->WaitForStateChange(state, std::chrono::system_clock::now() + std::chrono::milliseconds(200))) {
      const auto next = channel_->GetState(true);
      if (next != state) spdlog::info("env-manager link {}: {} -> {}", cfg_.address, stateName(state), stateName(next));
      state = next;
    }
  }
}

std::string EnvManagerClient::linkState() const {
  std::lock_guard lock(mu_);
  return link_;
}

bool EnvManagerClient::linkReady() const { return linkState() == "ready"; }

int EnvManagerClient::gpuCount() const {
  std::lock_guard lock(mu_);
  return gpus_;
}

void EnvManagerClient::refreshHardware() {
  auto stub = env_manager::v1::EnvManagerService::NewStub(channel_);
  grpc::ClientContext ctx;
  addAuth(ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  env_manager::v1::GetResourceAvailabilityRequest req;
  req.set_workload_class("gpu");
  env_manager::v1::ResourceAvailabilityResponse resp;
  const grpc::Status st = stub->GetResourceAvailability(&ctx, req, &resp);
  if (!st.ok()) {
    spdlog::debug("env-manager GetResourceAvailability: {}", st.error_message());
    return;
  }
  std::lock_guard lock(mu_);
  gpus_ = resp.hardware().gpus_size();
}

std::string EnvManagerClient::servicesState() const {
  std::lock_guard lock(mu_);
  return services_;
}

void EnvManagerClient::addAuth(grpc::ClientContext& ctx) const {
  if (!cfg_.token.empty()) ctx.AddMetadata("authorization", "Bearer " + cfg_.token);
}

void EnvManagerClient::ensure(std::stop_token stop) {
  Backoff backoff(BackoffPolicy{.initial = std::chrono::milliseconds(500), .max = std::chrono::milliseconds(30'000)});
  std::string list;
  for (const auto& s : cfg_.ensure_services) list += (list.empty() ? "" : ", ") + s;
  while (!stop.stop_requested()) {
    {
      std::lock_guard lock(mu_);
      services_ = "starting " + list;
    }
    spdlog::info("asking env-manager at {} to start {}", cfg_.address, list);
    const Status st = startServices(cfg_.ensure_services, stop);
    if (st.ok()) {
      std::lock_guard lock(mu_);
      services_ = "ready: " + list;
      spdlog::info("env-manager reports {} up", list);
      return;
    }
    if (stop.stop_requested()) return;
    const auto delay = backoff.next();
    {
      std::lock_guard lock(mu_);
      services_ = "failed (" + st.error() + "), retrying";
    }
    spdlog::warn("env-manager could not start {}: {}; retrying in {} ms", list, st.error(), delay.count());
    if (!clock_.sleepFor(delay, stop)) return;
  }
}

void EnvManagerClient::followHealth(std::stop_token stop) {
  Backoff backoff(BackoffPolicy{.initial = std::chrono::milliseconds(500), .max = std::chrono::milliseconds(30'000)});
  std::map<std::string, bool> known;  // what the listener was last told, per service
  while (!stop.stop_requested()) {
    auto stub = env_manager::v1::EnvManagerService::NewStub(channel_);
    grpc::ClientContext ctx;
    addAuth(ctx);
    ctx.set_wait_for_ready(true);
    std::stop_callback cancel(stop, [&ctx] { ctx.TryCancel(); });
    env_manager::v1::StreamHealthRequest req;
    req.set_interval_seconds(30);  // changes come at once; the rounds only confirm
    auto reader = stub->StreamHealth(&ctx, req);
    env_manager::v1::HealthUpdate u;
    while (reader->Read(&u)) {
      backoff.reset();
      auto it = known.find(u.service_name());
      if (it != known.end() && it->second == u.healthy()) continue;
      known[u.service_name()] = u.healthy();
      service_listener_(u.service_name(), u.healthy(), u.message());
    }
    const grpc::Status st = reader->Finish();
    if (stop.stop_requested()) return;
    spdlog::debug("env-manager StreamHealth ended: {}; following again", st.error_message());
    if (!clock_.sleepFor(backoff.next(), stop)) return;
  }
}

Status EnvManagerClient::startServices(const std::vector<std::string>& services, std::stop_token stop) {
  auto stub = env_manager::v1::EnvManagerService::NewStub(channel_);
  grpc::ClientContext ctx;
  addAuth(ctx);
  ctx.set_wait_for_ready(true);
  std::stop_callback cancel(stop, [&ctx] { ctx.TryCancel(); });
  env_manager::v1::StartServicesRequest req;
  for (const auto& s : services) req.add_service_names(s);
  auto reader = stub->StartServices(&ctx, req);
  env_manager::v1::ServiceStatusUpdate u;
  std::string outcome = "no summary";  // the closing update (no service name) says how it went
  while (reader->Read(&u)) {
    spdlog::debug("env-manager: {} {} {}", u.service_name(), u.status(), u.message());
    if (u.service_name().empty()) outcome = u.status() == "completed" ? "" : u.status() + ": " + u.message();
  }
  const grpc::Status st = reader->Finish();
  if (!st.ok()) return Error{"env-manager StartServices: " + st.error_message(), ErrorKind::Unavailable};
  if (!outcome.empty()) return Error{"env-manager: " + outcome, ErrorKind::Unavailable};
  return Status::Ok();
}

Result<ContainerOutcome> EnvManagerClient::executeTask(const std::string& task_id, const std::string& workload_class,
                                                       const Payload& payload, std::chrono::milliseconds timeout,
                                                       std::stop_token cancel) {
  auto stub = env_manager::v1::EnvManagerService::NewStub(channel_);
  grpc::ClientContext ctx;
  addAuth(ctx);
  // env-manager enforces the timeout by killing the container; give the call room to
  // report that before the deadline cuts it off.
  ctx.set_deadline(std::chrono::system_clock::now() + timeout + std::chrono::seconds(15));
  std::stop_callback on_cancel(cancel, [&ctx] { ctx.TryCancel(); });
  env_manager::v1::ExecuteTaskRequest req;
  req.set_task_id(task_id);
  req.set_workload_class(workload_class);
  for (const auto& [k, v] : payload) (*req.mutable_payload())[k] = v;
  req.set_timeout_seconds(static_cast<int>(std::max<std::int64_t>(1, (timeout.count() + 999) / 1000)));
  env_manager::v1::ExecuteTaskResponse resp;
  const grpc::Status st = stub->ExecuteTask(&ctx, req, &resp);
  if (!st.ok()) {
    ErrorKind kind = ErrorKind::Unavailable;
    if (st.error_code() == grpc::StatusCode::INVALID_ARGUMENT) kind = ErrorKind::InvalidArgument;
    if (st.error_code() == grpc::StatusCode::CANCELLED) kind = ErrorKind::Cancelled;
    if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) kind = ErrorKind::Timeout;
    return Error{"env-manager ExecuteTask: " + st.error_message(), kind};
  }
  ContainerOutcome o;
  o.success = resp.success();
  o.error = resp.error();
  for (const auto& [k, v] : resp.result()) o.result[k] = v;
  o.result["latency_ms"] = std::to_string(resp.latency_ms());
  return o;
}

}  // namespace dspy::orchestrator
