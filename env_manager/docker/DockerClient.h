// DockerClient: DockerApi over the Engine's HTTP API with libcurl, on the unix socket
// (DOCKER_HOST unix://...) or TCP (tcp://host:port). Plain calls have a timeout;
// streaming calls (logs, events, pulls, waits) have none while data flows and end when
// their stop_token is triggered (checked at least once a second).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "env_manager/docker/DockerApi.h"
#include "env_manager/docker/DockerJson.h"

namespace dspy::envmanager::docker {

class DockerClient final : public DockerApi {
 public:
  struct Options {
    std::string host = "unix:///var/run/docker.sock";
    std::chrono::milliseconds timeout{30'000};
    // Called after every request with the operation name, success, and seconds taken.
    std::function<void(std::string_view operation, bool ok, double seconds)> observer;
  };

  // Checks the host string; does not contact Docker.
  static Result<std::unique_ptr<DockerClient>> create(Options options);

  Result<std::string> ping() override;
  Result<ImageInfo> inspectImage(const std::string& ref) override;
  Status pullImage(const std::string& ref, const std::function<void(const PullProgress&)>& on_progress,
                   std::stop_token stop) override;
  Result<std::vector<ContainerSummary>> listContainers(const Labels& label_filter, bool all) override;
  Result<std::string> createContainer(const CreateRequest& request) override;
  Status startContainer(const std::string& id) override;
  Status stopContainer(const std::string& id, int timeout_seconds) override;
  Status killContainer(const std::string& id, const std::string& signal) override;
  Status removeContainer(const std::string& id, bool force) override;
  Result<ContainerInfo> inspectContainer(const std::string& id) override;
  Result<int> waitContainer(const std::string& id, std::stop_token stop) override;
  Status streamLogs(const std::string& id, const LogOptions& options, const std::function<bool(const LogLine&)>& on_line,
                    std::stop_token stop) override;
  Result<Stats> stats(const std::string& id) override;
  Result<ExecResult> exec(const std::string& id, const std::vector<std::string>& command,
                          std::chrono::milliseconds timeout) override;
  Status ensureNetwork(const std::string& name, const Labels& labels) override;
  Status ensureVolume(const std::string& name, const Labels& labels) override;
  Status streamEvents(const Labels& label_filter, const std::function<void(const Event&)>& on_event,
                      std::stop_token stop) override;

  const std::string& host() const { return options_.host; }

  struct Response {
    long status = 0;
    std::string body;
  };

 private:
  explicit DockerClient(Options options, std::string socket_path, std::string base_url);

  // One HTTP exchange. `path` starts with '/' and gets the negotiated version prefix.
  Result<Response> call(std::string_view operation, const std::string& method, const std::string& path,
                        const std::string& body = "", std::chrono::milliseconds timeout = {});
  // A streaming exchange: on_data gets the body as it arrives; return false to stop.
  // Returns the HTTP status, or an error if the connection failed or was cancelled.
  Result<long> stream(std::string_view operation, const std::string& method, const std::string& path,
                      const std::string& body, const std::function<bool(std::string_view)>& on_data,
                      std::stop_token stop, std::string* error_body);
  Result<std::string> versionPrefix();
  Result<Response> raw(const std::string& method, const std::string& url, const std::string& body,
                       std::chrono::milliseconds timeout);

  Options options_;
  std::string socket_path_;  // empty for TCP
  std::string base_url_;     // http://localhost or http://host:port
  std::mutex version_mu_;
  std::string version_prefix_;  // "/v1.41" once negotiated
};

// Maps an Engine answer to an error: the Engine's own "message", and a kind from the
// HTTP status (404 NotFound, 409 AlreadyExists, 400 InvalidArgument, ...).
Error dockerError(std::string_view operation, long http_status, const std::string& body);

// The Engine API's JSON body for POST /containers/create.
std::string createBody(const CreateRequest& request);

}  // namespace dspy::envmanager::docker
