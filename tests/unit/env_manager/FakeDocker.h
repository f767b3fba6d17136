// Test doubles for the lifecycle engine: an in-memory Docker Engine that records every
// operation in order, and a prober whose answers each test scripts.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <map>
#include <stdexcept>
#include <mutex>
#include <set>
#include <thread>
#include <string>
#include <vector>

#include "env_manager/docker/DockerApi.h"
#include "env_manager/health/HealthProber.h"

namespace dspy::test {

using namespace dspy::envmanager;

// The shipped nine-service stack, parsed.
inline ServicesFile defaultStack() {
  auto f = parseServices(defaultServicesYaml(), "services.yaml");
  if (!f.ok()) throw std::runtime_error("the default services file does not parse: " + f.error());
  return f.value();
}

class FakeDocker final : public docker::DockerApi {
 public:
  struct Container {
    docker::CreateRequest request;
    docker::ContainerInfo info;
  };

  std::set<std::string> images;         // present locally
  std::set<std::string> pullable;       // can be pulled
  // A pull of the image waits (real time, at most 5 s) until this entry is in the log.
  std::map<std::string, std::string> pull_waits_for;
  std::map<std::string, int> exit_on_start;  // service -> exit code right after start
  int task_exit_code = 0;
  bool task_runs_until_killed = false;
  std::vector<docker::LogLine> task_logs;
  std::vector<docker::CreateRequest> creates;  // every create request, in order

  // Every operation in order: "create redis", "start redis", "stop kafka", ...
  std::vector<std::string> log() const {
    std::lock_guard lock(mu_);
    return log_;
  }
  std::size_t indexOf(const std::string& entry) const {
    auto l = log();
    auto it = std::find(l.begin(), l.end(), entry);
    return it == l.end() ? std::string::npos : static_cast<std::size_t>(it - l.begin());
  }
  std::size_t count(const std::string& entry) const {
    auto l = log();
    return static_cast<std::size_t>(std::count(l.begin(), l.end(), entry));
  }
  void note(const std::string& entry) {
    std::lock_guard lock(mu_);
    log_.push_back(entry);
  }
  // Makes a container stop as if its process died; returns the die event.
  docker::Event kill(const std::string& service, int exit_code) {
    std::lock_guard lock(mu_);
    for (auto& [id, c] : containers_) {
      if (c.info.labels["dev.dspy-agent.service"] == service && c.info.running) {
        c.info.running = false;
        c.info.exit_code = exit_code;
        docker::Event e{"container", "die", id, c.info.labels, 0};
        e.attributes["exitCode"] = std::to_string(exit_code);
        return e;
      }
    }
    return {};
  }
  // Puts a container there as if an earlier env-manager had created it.
  std::string plant(const docker::Labels& labels, bool running) {
    std::lock_guard lock(mu_);
    const std::string id = "planted" + std::to_string(++next_id_);
    Container c;
    c.info.id = id;
    c.info.name = "planted-" + labels.at("dev.dspy-agent.service") + std::to_string(next_id_);
    c.info.labels = labels;
    c.info.running = running;
    c.info.state = running ? "running" : "exited";
    containers_[id] = c;
    return id;
  }
  std::size_t containerCount() const {
    std::lock_guard lock(mu_);
    return containers_.size();
  }

  Result<std::string> ping() override { return std::string("/v1.41"); }
  Result<docker::ImageInfo> inspectImage(const std::string& ref) override {
    std::lock_guard lock(mu_);
    if (!images.count(ref)) return Error{"no such image " + ref, ErrorKind::NotFound};
    return docker::ImageInfo{ref, 1};
  }
  Status pullImage(const std::string& ref, const std::function<void(const docker::PullProgress&)>& on_progress,
                   std::stop_token) override {
    note("pull " + ref);
    if (!pullable.count(ref)) return Error{"pull access denied for " + ref, ErrorKind::NotFound};
    if (auto gate = pull_waits_for.find(ref); gate != pull_waits_for.end()) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (indexOf(gate->second) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    on_progress({"layer1", "Downloading", 50, 100});
    on_progress({"layer1", "Downloading", 100, 100});
    std::lock_guard lock(mu_);
    images.insert(ref);
    return Status::Ok();
  }
  Result<std::vector<docker::ContainerSummary>> listContainers(const docker::Labels& filter, bool) override {
    std::lock_guard lock(mu_);
    std::vector<docker::ContainerSummary> out;
    for (auto& [id, c] : containers_) {
      bool match = true;
      // As Docker's label filter: an empty value asks only that the label is there.
      for (const auto& [k, v] : filter) match = match && (v.empty() ? c.info.labels.count(k) > 0 : c.info.labels[k] == v);
      if (match) out.push_back({id, c.info.name, c.info.image, c.info.running ? "running" : "exited", c.info.labels});
    }
    return out;
  }
  Result<std::string> createContainer(const docker::CreateRequest& q) override {
    std::lock_guard lock(mu_);
    creates.push_back(q);
    auto svc = q.labels.find("dev.dspy-agent.service");
    const std::string service = svc != q.labels.end() ? svc->second : "task";
    log_.push_back("create " + service);
    for (const auto& [other_id, other] : containers_) {
      if (!q.name.empty() && other.info.name == q.name) {
        return Error{"Conflict. The container name \"/" + q.name + "\" is already in use", ErrorKind::AlreadyExists};
      }
    }
    const std::string id = "c" + std::to_string(++next_id_);
    Container c;
    c.request = q;
    c.info.id = id;
    c.info.name = q.name;
    c.info.image = q.image;
    c.info.labels = q.labels;
    containers_[id] = c;
    return id;
  }
  Status startContainer(const std::string& id) override {
    std::lock_guard lock(mu_);
    auto& c = containers_.at(id);
    const std::string service = c.info.labels["dev.dspy-agent.service"];
    log_.push_back("start " + service);
    c.info.running = true;
    if (auto it = exit_on_start.find(service); it != exit_on_start.end()) {
      c.info.running = false;
      c.info.exit_code = it->second;
    }
    return Status::Ok();
  }
  Status stopContainer(const std::string& id, int) override {
    std::lock_guard lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return Error{"no such container", ErrorKind::NotFound};
    log_.push_back("stop " + it->second.info.labels["dev.dspy-agent.service"]);
    it->second.info.running = false;
    return Status::Ok();
  }
  Status killContainer(const std::string& id, const std::string&) override {
    std::lock_guard lock(mu_);
    log_.push_back("kill " + id);
    killed_.insert(id);
    wait_cv_.notify_all();
    return Status::Ok();
  }
  Status removeContainer(const std::string& id, bool) override {
    std::lock_guard lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) {  // Docker takes a name as well
      it = std::find_if(containers_.begin(), containers_.end(), [&](const auto& kv) { return kv.second.info.name == id; });
    }
    if (it != containers_.end()) {
      log_.push_back("remove " + it->second.info.labels["dev.dspy-agent.service"]);
      containers_.erase(it);
    }
    return Status::Ok();
  }
  Result<docker::ContainerInfo> inspectContainer(const std::string& id) override {
    std::lock_guard lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) {
      for (auto& [cid, c] : containers_) {
        if (c.info.name == id) return c.info;
      }
      return Error{"no such container " + id, ErrorKind::NotFound};
    }
    return it->second.info;
  }
  // Task containers: exit at once with `task_exit_code`, or (task_runs_until_killed)
  // run until killContainer (at most 10 s) and exit 137.
  Result<int> waitContainer(const std::string& id, std::stop_token) override {
    std::unique_lock lock(mu_);
    if (!task_runs_until_killed) return task_exit_code;
    wait_cv_.wait_for(lock, std::chrono::seconds(10), [&] { return killed_.count(id) > 0; });
    return killed_.count(id) ? 137 : task_exit_code;
  }
  Status streamLogs(const std::string&, const docker::LogOptions&, const std::function<bool(const docker::LogLine&)>& on_line,
                    std::stop_token) override {
    std::vector<docker::LogLine> lines;
    {
      std::lock_guard lock(mu_);
      lines = task_logs;
    }
    for (const auto& l : lines) {
      if (!on_line(l)) break;
    }
    return Status::Ok();
  }
  Result<docker::Stats> stats(const std::string&) override { return docker::Stats{}; }
  Result<docker::ExecResult> exec(const std::string&, const std::vector<std::string>&,
                                  std::chrono::milliseconds) override {
    return docker::ExecResult{0, ""};
  }
  Status ensureNetwork(const std::string&, const docker::Labels&) override { return Status::Ok(); }
  Status ensureVolume(const std::string&, const docker::Labels&) override { return Status::Ok(); }
  Status streamEvents(const docker::Labels&, const std::function<void(const docker::Event&)>&,
                      std::stop_token) override {
    return Status::Ok();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable wait_cv_;
  std::set<std::string> killed_;
  std::vector<std::string> log_;
  std::map<std::string, Container> containers_;
  int next_id_ = 0;
};

// Healthy after `probes_needed[service]` probes (default 1); never if -1.
class FakeProber final : public HealthProber {
 public:
  FakeProber(FakeDocker& docker) : docker_(docker) {}
  std::map<std::string, int> probes_needed;
  // After its first healthy answer the service fails this many probes, then recovers.
  std::map<std::string, int> failures_after_healthy;
  // A probe of the service waits (real time, at most 5 s) until this entry is in the log.
  std::map<std::string, std::string> wait_for_log_entry;

  ProbeResult probe(const ServiceSpec& spec, const docker::ContainerInfo&, const std::string&) override {
    if (auto gate = wait_for_log_entry.find(spec.name); gate != wait_for_log_entry.end()) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (docker_.indexOf(gate->second) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    std::lock_guard lock(mu_);
    const int n = ++count_[spec.name];
    auto it = probes_needed.find(spec.name);
    const int need = it == probes_needed.end() ? 1 : it->second;
    bool healthy = need >= 0 && n >= need;
    if (healthy && n > need && n <= need + failures_after_healthy[spec.name]) healthy = false;
    if (healthy && !reported_[spec.name]) {
      reported_[spec.name] = true;
      docker_.note("healthy " + spec.name);
    }
    return {healthy, healthy ? "ok" : "not yet", 0.001};
  }

 private:
  FakeDocker& docker_;
  std::mutex mu_;
  std::map<std::string, int> count_;
  std::map<std::string, bool> reported_;
};

}  // namespace dspy::test
