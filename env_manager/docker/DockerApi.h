// DockerApi: the Docker Engine operations env-manager uses. DockerClient implements it
// over the Engine's HTTP API; unit tests of the lifecycle engine use a fake.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <stop_token>
#include <string>
#include <vector>

#include "common/Result.h"

namespace dspy::envmanager::docker {

using Labels = std::map<std::string, std::string>;

struct PortBinding {
  int container_port = 0;
  std::string protocol = "tcp";
  std::string host_ip = "127.0.0.1";
  int host_port = 0;
  bool random_host_port = false;  // published on a port Docker picks
};

struct Mount {
  std::string source;  // volume name, or an absolute host path for a bind
  std::string target;
  bool bind = false;   // host path (bind) or named volume
  bool read_only = false;
  bool tmpfs = false;  // a tmpfs at target (no source)
};

struct NetworkAttachment {
  std::string name;
  std::vector<std::string> aliases;
};

// Docker's own HEALTHCHECK for a container (compose's healthcheck); 0 = Docker's default.
struct ContainerHealthcheck {
  std::vector<std::string> test;  // empty = the image's
  std::chrono::milliseconds interval{0};
  std::chrono::milliseconds timeout{0};
  std::chrono::milliseconds start_period{0};
  int retries = 0;
};

struct CreateRequest {
  std::string name;
  std::string image;
  std::vector<std::string> command;     // empty = the image's CMD
  std::vector<std::string> entrypoint;  // empty = the image's ENTRYPOINT
  std::vector<std::string> env;         // KEY=VALUE
  Labels labels;
  std::vector<PortBinding> ports;
  std::vector<Mount> mounts;
  std::string network;                  // empty = Docker's default bridge
  std::vector<std::string> aliases;     // DNS names on `network`
  std::vector<NetworkAttachment> extra_networks;  // joined right after the create
  std::string working_dir;
  std::string user;
  std::string hostname;
  ContainerHealthcheck healthcheck;
  double cpus = 0;                      // 0 = no limit
  std::int64_t memory_bytes = 0;        // 0 = no limit
  bool gpus = false;                    // request GPUs (device request "gpu")
  int gpu_count = -1;                   // -1 = all
  std::vector<std::string> gpu_device_ids;  // instead of a count
  int stop_timeout_seconds = 10;
  // Isolation for task containers.
  bool network_disabled = false;
  bool read_only_rootfs = false;
  bool drop_all_capabilities = false;
  bool no_new_privileges = false;
  std::int64_t pids_limit = 0;
};

struct ContainerSummary {
  std::string id;
  std::string name;   // without the leading '/'
  std::string image;
  std::string state;  // created, running, exited, dead, ...
  Labels labels;
};

struct ContainerInfo {
  std::string id;
  std::string name;
  std::string image;
  std::string state;  // created, running, paused, restarting, exited, dead
  bool running = false;
  int exit_code = 0;
  bool oom_killed = false;
  std::string error;
  std::string health;            // the image's own HEALTHCHECK status, if it has one
  std::int64_t started_at = 0;   // unix seconds, 0 if never
  std::int64_t finished_at = 0;  // unix seconds, 0 if not
  Labels labels;
  std::map<std::string, std::string> network_ips;  // network name -> IPv4
};

struct ImageInfo {
  std::string id;
  std::int64_t size = 0;
};

struct PullProgress {
  std::string layer;   // layer id, empty for whole-image messages
  std::string status;  // Docker's words: "Downloading", "Extracting", "Pull complete", ...
  std::int64_t current = 0;
  std::int64_t total = 0;
};

struct LogOptions {
  bool follow = false;
  int tail = 0;                 // 0 = all
  std::int64_t since = 0;       // unix seconds, 0 = from the start
  bool stdout_stream = true;
  bool stderr_stream = true;
};

struct LogLine {
  std::string stream;  // stdout or stderr
  std::int64_t timestamp_ns = 0;
  std::string message;  // without the trailing newline
};

struct Stats {
  double cpu_percent = 0;
  std::int64_t memory_bytes = 0;
  std::int64_t network_rx_bytes = 0;
  std::int64_t network_tx_bytes = 0;
};

struct ExecResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr interleaved
};

struct Event {
  std::string type;    // container, network, ...
  std::string action;  // start, die, oom, kill, stop, destroy, health_status: healthy, ...
  std::string id;
  Labels attributes;   // includes the container's labels, name, exitCode
  std::int64_t time_ns = 0;
};

class DockerApi {
 public:
  virtual ~DockerApi() = default;

  // The API version in use (negotiated from GET /version on first contact).
  virtual Result<std::string> ping() = 0;
  virtual Result<ImageInfo> inspectImage(const std::string& ref) = 0;
  // Streams progress until the pull ends; an error inside the stream is an error result.
  virtual Status pullImage(const std::string& ref, const std::function<void(const PullProgress&)>& on_progress,
                           std::stop_token stop) = 0;
  virtual Result<std::vector<ContainerSummary>> listContainers(const Labels& label_filter, bool all) = 0;
  virtual Result<std::string> createContainer(const CreateRequest& request) = 0;
  virtual Status startContainer(const std::string& id) = 0;
  virtual Status stopContainer(const std::string& id, int timeout_seconds) = 0;
  virtual Status killContainer(const std::string& id, const std::string& signal) = 0;
  virtual Status removeContainer(const std::string& id, bool force) = 0;
  virtual Result<ContainerInfo> inspectContainer(const std::string& id) = 0;
  // Blocks until the container exits; its exit code.
  virtual Result<int> waitContainer(const std::string& id, std::stop_token stop) = 0;
  // Calls on_line for each line; return false from it to end the stream early.
  virtual Status streamLogs(const std::string& id, const LogOptions& options,
                            const std::function<bool(const LogLine&)>& on_line, std::stop_token stop) = 0;
  virtual Result<Stats> stats(const std::string& id) = 0;
  virtual Result<ExecResult> exec(const std::string& id, const std::vector<std::string>& command,
                                  std::chrono::milliseconds timeout) = 0;
  virtual Status ensureNetwork(const std::string& name, const Labels& labels) = 0;
  virtual Status ensureVolume(const std::string& name, const Labels& labels) = 0;
  // Streams events matching the label filter until stopped or the connection ends.
  virtual Status streamEvents(const Labels& label_filter, const std::function<void(const Event&)>& on_event,
                              std::stop_token stop) = 0;
};

}  // namespace dspy::envmanager::docker
