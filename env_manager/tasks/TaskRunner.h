// TaskRunner: ExecuteTask. Runs one allowlisted command in a fresh, isolated container
// (no capabilities, no new privileges, no network unless the class allows it, limits
// from the class), kills it at the timeout, returns its exit code and the tails of its
// stdout and stderr, and removes the container. Also reports per-class capacity.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/Clock.h"
#include "common/Payload.h"
#include "common/Result.h"
#include "env_manager/EnvManagerConfig.h"
#include "env_manager/docker/DockerApi.h"

namespace dspy::envmanager {

struct TaskOutcome {
  bool success = false;
  std::map<std::string, std::string> result;  // exit_code, stdout_tail, stderr_tail, ...
  std::string error;
  double latency_ms = 0;
};

struct ClassAvailability {
  int capacity = 0;
  int in_use = 0;
};

struct HardwareSummary {
  int cpu_cores = 0;
  std::int64_t memory_bytes = 0;
  struct Gpu {
    int index = 0;
    std::string name;
    std::int64_t memory_bytes = 0;
    double utilization_percent = 0;
  };
  std::vector<Gpu> gpus;
};

// Cores, memory, and GPUs as nvidia-smi reports them (none when it is absent).
HardwareSummary detectHardware();
// Parses `nvidia-smi --query-gpu=index,name,memory.total,utilization.gpu
// --format=csv,noheader,nounits` output; bad lines are skipped.
std::vector<HardwareSummary::Gpu> parseNvidiaSmi(const std::string& csv);

class TaskRunner {
 public:
  // `clock` times the tasks' timeouts.
  TaskRunner(docker::DockerApi& docker, TasksConfig config, std::string project, Clock& clock = Clock::real());

  // Invalid input (unknown class or command, bad args) is an InvalidArgument error;
  // a full class is FailedPrecondition. A task that runs and fails is a TaskOutcome
  // with success=false.
  Result<TaskOutcome> run(const std::string& task_id, const std::string& workload_class,
                          const std::map<std::string, std::string>& payload, int timeout_seconds);
  Result<ClassAvailability> availability(const std::string& workload_class) const;
  // Removes the task containers of this project that no run of this process owns: those
  // a previous env-manager left when it was killed while tasks ran (nobody waits for
  // their results any more, and a retry of the same task id would find the name taken).
  // Called at start; returns how many were removed.
  Result<int> removeLeftovers();
  std::vector<std::string> classes() const;

 private:
  docker::DockerApi& docker_;
  Clock& clock_;
  TasksConfig config_;
  std::string project_;
  mutable std::mutex mu_;
  std::map<std::string, int> in_use_;
  std::set<std::string> running_;  // task ids with a run in this process
};

}  // namespace dspy::envmanager
