// Task containers.
#include "env_manager/tasks/TaskRunner.h"
#include "common/Clock.h"
#include "common/Text.h"

#include <sys/sysinfo.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <regex>
#include <spdlog/spdlog.h>
#include <sstream>
#include <thread>

#include "env_manager/lifecycle/Lifecycle.h"

namespace dspy::envmanager {
namespace {

std::string tail(const std::string& s, std::size_t n) { return s.size() <= n ? s : s.substr(s.size() - n); }

}  // namespace

std::vector<HardwareSummary::Gpu> parseNvidiaSmi(const std::string& csv) {
  std::vector<HardwareSummary::Gpu> out;
  std::istringstream in(csv);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string item;
    while (std::getline(ss, item, ',')) {
      const auto b = item.find_first_not_of(' ');
      const auto e = item.find_last_not_of(' ');
      f.push_back(b == std::string::npos ? "" : item.substr(b, e - b + 1));
    }
    if (f.size() < 4) continue;
    const auto index = parseInt(f[0], 0, 1024);
    const auto mib = parseInt(f[2], 0, INT64_MAX / (1024 * 1024));
    if (!index || !mib) continue;
    HardwareSummary::Gpu g;
    g.index = static_cast<int>(*index);
    g.name = f[1];
    g.memory_bytes = *mib * 1024 * 1024;
    g.utilization_percent = f[3] == "[N/A]" ? 0 : std::strtod(f[3].c_str(), nullptr);
    out.push_back(g);
  }
  return out;
}

HardwareSummary detectHardware() {
  HardwareSummary h;
  h.cpu_cores = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  struct sysinfo si {};
  if (sysinfo(&si) == 0) h.memory_bytes = static_cast<std::int64_t>(si.totalram) * si.mem_unit;
  if (access("/usr/bin/nvidia-smi", X_OK) == 0) {
    if (FILE* p = popen("/usr/bin/nvidia-smi --query-gpu=index,name,memory.total,utilization.gpu "
                        "--format=csv,noheader,nounits 2>/dev/null",
                        "r")) {
      std::string out;
      char buf[512];
      while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
      pclose(p);
      h.gpus = parseNvidiaSmi(out);
    }
  }
  return h;
}

TaskRunner::TaskRunner(docker::DockerApi& docker, TasksConfig config, std::string project, Clock& clock)
    : docker_(docker), clock_(clock), config_(std::move(config)), project_(std::move(project)) {}

std::vector<std::string> TaskRunner::classes() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : config_.classes) out.push_back(k);
  return out;
}

Result<ClassAvailability> TaskRunner::availability(const std::string& workload_class) const {
  std::lock_guard lock(mu_);
  if (workload_class.empty()) {
    ClassAvailability all;
    for (const auto& [k, c] : config_.classes) {
      all.capacity += c.capacity;
      auto it = in_use_.find(k);
      all.in_use += it == in_use_.end() ? 0 : it->second;
    }
    return all;
  }
  auto c = config_.classes.find(workload_class);
  if (c == config_.classes.end()) {
    std::string known;
    for (const auto& [k, v] : config_.classes) known += (known.empty() ? "" : ", ") + k;
    return Error{"unknown workload class '" + workload_class + "' (configured: " + known + ")",
                 ErrorKind::InvalidArgument};
  }
  auto it = in_use_.find(workload_class);
  return ClassAvailability{c->second.capacity, it == in_use_.end() ? 0 : it->second};
}

Result<int> TaskRunner::removeLeftovers() {
  auto list = docker_.listContainers({{kLabelProject, project_}, {"dev.dspy-agent.task-id", ""}}, /*all=*/true);
  if (!list) return Error{"cannot list task containers: " + list.error(), list.kind()};
  int removed = 0;
  for (const auto& c : list.value()) {
    {
      std::lock_guard lock(mu_);
      auto id = c.labels.find("dev.dspy-agent.task-id");
      if (id != c.labels.end() && running_.count(id->second)) continue;
    }
    if (docker_.removeContainer(c.id, true).ok()) ++removed;
  }
  return removed;
}

Result<TaskOutcome> TaskRunner::run(const std::string& task_id, const std::string& workload_class,
                                    const std::map<std::string, std::string>& raw_payload, int timeout_seconds) {
  static const std::regex kTaskId("[A-Za-z0-9][A-Za-z0-9_.-]{0,127}");
  if (!std::regex_match(task_id, kTaskId)) {
    return Error{"task_id must be 1-128 characters of [A-Za-z0-9_.-], starting with a letter or digit",
                 ErrorKind::InvalidArgument};
  }
  auto cls_it = config_.classes.find(workload_class);
  if (cls_it == config_.classes.end()) return availability(workload_class).fullError();
  const TaskClassConfig& cls = cls_it->second;
  if (timeout_seconds < 0) return Error{"timeout_seconds must not be negative", ErrorKind::InvalidArgument};
  const int timeout = timeout_seconds == 0 ? cls.timeout_seconds : std::min(timeout_seconds, cls.timeout_seconds);
  auto payload = expandPayload(raw_payload);
  if (!payload) return payload.fullError();
  auto cmd_name = payload.value().find("command");
  if (cmd_name == payload.value().end()) {
    return Error{"payload needs \"command\": the name of a command in tasks.commands", ErrorKind::InvalidArgument};
  }
  auto cmd_it = config_.commands.find(cmd_name->second);
  if (cmd_it == config_.commands.end()) {
    return Error{"command '" + cmd_name->second + "' is not allowed (not in tasks.commands)", ErrorKind::InvalidArgument};
  }
  const TaskCommandConfig& cmd = cmd_it->second;
  std::vector<std::string> argv = cmd.argv;
  if (auto args = payload.value().find("args"); args != payload.value().end()) {
    if (!cmd.allow_args) return Error{"command '" + cmd_name->second + "' takes no args", ErrorKind::InvalidArgument};
    auto j = nlohmann::json::parse(args->second, nullptr, false);
    if (!j.is_array()) return Error{"args must be a JSON list of strings", ErrorKind::InvalidArgument};
    for (const auto& a : j) {
      if (!a.is_string()) return Error{"args must be a JSON list of strings", ErrorKind::InvalidArgument};
      argv.push_back(a.get<std::string>());
    }
  }
  static const std::regex kEnvName("[A-Za-z_][A-Za-z0-9_]*");
  std::vector<std::string> env;
  for (const auto& [k, v] : payload.value()) {
    if (k.rfind("env.", 0) != 0) continue;
    const std::string name = k.substr(4);
    if (!std::regex_match(name, kEnvName)) return Error{"bad environment variable name '" + name + "'", ErrorKind::InvalidArgument};
    env.push_back(name + "=" + v);
  }
  {
    std::lock_guard lock(mu_);
    if (running_.count(task_id)) {
      return Error{"a task with id '" + task_id + "' is already running", ErrorKind::AlreadyExists};
    }
    if (in_use_[workload_class] >= cls.capacity) {
      return Error{"workload class '" + workload_class + "' is at capacity (" + std::to_string(cls.capacity) + ")",
                   ErrorKind::FailedPrecondition};
    }
    ++in_use_[workload_class];
    running_.insert(task_id);
  }
  struct Release {
    TaskRunner* self;
    std::string cls;
    std::string task_id;
    ~Release() {
      std::lock_guard lock(self->mu_);
      --self->in_use_[cls];
      self->running_.erase(task_id);
    }
  } release{this, workload_class, task_id};

  const auto t0 = std::chrono::steady_clock::now();
  TaskOutcome out;
  auto done = [&](bool success, const std::string& error) {
    out.success = success;
    out.error = error;
    out.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return out;
  };
  if (auto img = docker_.inspectImage(cmd.image); !img) {
    if (img.kind() != ErrorKind::NotFound) return done(false, img.error());
    if (Status s = docker_.pullImage(cmd.image, [](const docker::PullProgress&) {}, {}); !s.ok()) {
      return done(false, "image " + cmd.image + " is not available: " + s.error());
    }
  }
  docker::CreateRequest q;
  q.name = project_ + "-task-" + task_id;
  q.image = cmd.image;
  q.command = argv;
  q.env = env;
  q.labels = {{kLabelManaged, "true"}, {kLabelProject, project_}, {"dev.dspy-agent.task-id", task_id},
              {"dev.dspy-agent.task-class", workload_class}};
  q.cpus = cls.cpus;
  q.memory_bytes = cls.memory_bytes;
  q.gpus = cls.gpus;
  q.network_disabled = !cls.network;
  q.drop_all_capabilities = true;
  q.no_new_privileges = true;
  q.pids_limit = 256;
  auto created = docker_.createContainer(q);
  if (!created && created.kind() == ErrorKind::AlreadyExists) {
    // No run of this process owns the name (checked above): a container left by an
    // env-manager that was killed while this task ran. Its caller gave up on it; this
    // call is the retry. Replace it.
    spdlog::warn("task {}: removing the container a previous env-manager left under {}", task_id, q.name);
    (void)docker_.removeContainer(q.name, true);
    created = docker_.createContainer(q);
  }
  if (!created) return done(false, "cannot create the task container: " + created.error());
  const std::string id = created.value();
  out.result["container_id"] = id.substr(0, 12);
  if (Status s = docker_.startContainer(id); !s.ok()) {
    (void)docker_.removeContainer(id, true);
    return done(false, "cannot start the task container: " + s.error());
  }
  // Wait for the exit, or kill at the deadline.
  std::stop_source deadline;
  bool timed_out = false;
  std::jthread timer([&](std::stop_token st) {
    if (clock_.sleepFor(std::chrono::seconds(timeout), st)) {
      timed_out = true;
      (void)docker_.killContainer(id, "KILL");
    }
  });
  auto code = docker_.waitContainer(id, deadline.get_token());
  timer.request_stop();
  timer.join();
  std::string out_text;
  std::string err_text;
  const std::size_t cap = static_cast<std::size_t>(config_.output_tail_bytes);
  (void)docker_.streamLogs(id, {.follow = false, .tail = 0, .since = 0},
                           [&](const docker::LogLine& l) {
                             std::string& dst = l.stream == "stderr" ? err_text : out_text;
                             dst += l.message + "\n";
                             if (dst.size() > 4 * cap) dst = tail(dst, 2 * cap);
                             return true;
                           },
                           {});
  auto info = docker_.inspectContainer(id);
  (void)docker_.removeContainer(id, true);
  out.result["stdout_tail"] = tail(out_text, cap);
  out.result["stderr_tail"] = tail(err_text, cap);
  const int exit_code = code ? code.value() : (info ? info.value().exit_code : -1);
  out.result["exit_code"] = std::to_string(exit_code);
  if (timed_out) {
    out.result["timed_out"] = "true";
    return done(false, "task timed out after " + std::to_string(timeout) + "s and was killed");
  }
  if (info && info.value().oom_killed) return done(false, "task was killed: out of memory");
  if (!code) return done(false, "waiting for the task failed: " + code.error());
  if (exit_code != 0) return done(false, "task exited with code " + std::to_string(exit_code));
  return done(true, "");
}

}  // namespace dspy::envmanager
