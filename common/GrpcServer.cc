// gRPC server construction, credentials and the token check.
#include "common/GrpcServer.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/auth_metadata_processor.h>
#include <grpcpp/security/server_credentials.h>

#include <fstream>
#include <sstream>

#include "common/ConfigSchema.h"
#include "common/TokenAuth.h"

namespace dspy {
namespace {

constexpr std::string_view kHealthPrefix = "/grpc.health.v1.Health/";

// Runs inline on the transport thread for every call; rejects a missing or wrong token
// with UNAUTHENTICATED. Health checks stay open so probes need no secret.
class TokenProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit TokenProcessor(std::shared_ptr<TokenAuth> auth) : auth_(std::move(auth)) {}
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& md, grpc::AuthContext* /*context*/, OutputMetadata* /*consumed*/,
                       OutputMetadata* /*response*/) override {
    auto path = md.find(":path");
    if (path != md.end() && std::string_view(path->second.data(), path->second.size()).starts_with(kHealthPrefix)) {
      return grpc::Status::OK;
    }
    auto authz = md.find("authorization");
    const std::string_view value =
        authz == md.end() ? std::string_view() : std::string_view(authz->second.data(), authz->second.size());
    if (!auth_->allows(value)) {
      return {grpc::StatusCode::UNAUTHENTICATED, "missing or wrong bearer token (metadata 'authorization: Bearer ...')"};
    }
    return grpc::Status::OK;
  }

 private:
  std::shared_ptr<TokenAuth> auth_;
};

Result<std::string> readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Error{"cannot read " + path};
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

bool isLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

GrpcServer::GrpcServer(Options options, std::shared_ptr<TokenAuth> auth)
    : options_(std::move(options)), auth_(std::move(auth)) {}

GrpcServer::~GrpcServer() {
  if (server_) shutdown(std::chrono::milliseconds(0));
}

void GrpcServer::addService(grpc::Service* service) { services_.push_back(service); }

Status GrpcServer::start() {
  auto ep = config::parseEndpoint(options_.address);
  if (!ep) return Error{"grpc address: " + ep.error()};

  // Credentials: TLS when configured. Without TLS on a loopback address we still use
  // gRPC's "local" credentials: they exchange nothing on the wire (plain clients work)
  // but they let the token processor see every call, so a token set by a later reload
  // is enforced too. A non-loopback address without TLS gets no token support: the
  // config check refuses that combination.
  std::shared_ptr<grpc::ServerCredentials>& creds = creds_;
  if (options_.tls.enabled()) {
    auto cert = readFile(options_.tls.cert_file);
    auto key = readFile(options_.tls.key_file);
    if (!cert) return Error{"tls.cert_file: " + cert.error()};
    if (!key) return Error{"tls.key_file: " + key.error()};
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({key.value(), cert.value()});
    if (!options_.tls.client_ca_file.empty()) {
      auto ca = readFile(options_.tls.client_ca_file);
      if (!ca) return Error{"tls.client_ca_file: " + ca.error()};
      ssl.pem_root_certs = ca.value();
      ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    }
    creds = grpc::SslServerCredentials(ssl);
    creds->SetAuthMetadataProcessor(std::make_shared<TokenProcessor>(auth_));
  } else if (isLoopbackHost(ep.value().host)) {
    creds = grpc::experimental::LocalServerCredentials(LOCAL_TCP);
    creds->SetAuthMetadataProcessor(std::make_shared<TokenProcessor>(auth_));
  } else {
    creds = grpc::InsecureServerCredentials();
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.address, creds, &port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options_.max_message_bytes));
  // gRPC enables SO_REUSEPORT by default: a second daemon would then share the port
  // instead of failing to start.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Dead clients are noticed by keepalive pings, so their streams end and free resources.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  for (auto* s : services_) builder.RegisterService(s);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    return Error{"cannot listen on gRPC address " + options_.address +
                 " (in use, or the host is not a local address)"};
  }
  return Status::Ok();
}

void GrpcServer::setServing(bool serving) {
  if (!server_) return;
  if (auto* health = server_->GetHealthCheckService()) health->SetServingStatus(serving);
}

void GrpcServer::shutdown(std::chrono::milliseconds grace) {
  if (!server_) return;
  setServing(false);
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  server_.reset();
}

}  // namespace dspy
