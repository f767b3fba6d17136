// SlurmCommands: the Slurm client commands the orchestrator runs (sbatch, squeue,
// sacct or scontrol, scancel), behind an interface so that the tracker can be tested
// with a fake. The real one runs the commands from PATH (or bin_dir) with SLURM_CONF
// when configured, a timeout on each call, and counts its calls per command.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/Result.h"
#include "orchestrator/slurm/SlurmParse.h"

namespace dspy::orchestrator::slurm {

struct CommandsConfig {
  std::string bin_dir;  // empty: PATH
  std::string conf;     // SLURM_CONF for the commands; empty: Slurm's default
  std::chrono::milliseconds timeout{30'000};
  std::string accounting = "auto";  // auto | sacct | scontrol: where ended jobs are read
};

struct CallCounts {
  std::int64_t sbatch = 0, squeue = 0, sacct = 0, scontrol = 0, scancel = 0, failures = 0;
};

class SlurmCommands {
 public:
  virtual ~SlurmCommands() = default;
  // sbatch --parsable ARGS SCRIPT: the job id. A refusal is InvalidArgument with Slurm's
  // own message; slurmctld out of reach is Unavailable.
  virtual Result<std::string> submit(const std::vector<std::string>& args, const std::string& script) = 0;
  // One squeue call for all `ids` (every state slurmctld still holds).
  virtual Result<std::vector<JobState>> queue(const std::vector<std::string>& ids) = 0;
  // One sacct call (accounting) or one scontrol call (without) for ended jobs.
  virtual Result<std::vector<JobState>> ended(const std::vector<std::string>& ids) = 0;
  // The job that carries this --comment, if slurmctld knows one (after a crash).
  virtual Result<std::string> findByMarker(const std::string& marker) = 0;
  virtual Status cancel(const std::vector<std::string>& ids) = 0;
  virtual CallCounts counts() const = 0;
};

class CliSlurmCommands final : public SlurmCommands {
 public:
  explicit CliSlurmCommands(CommandsConfig cfg) : cfg_(std::move(cfg)) {}
  Result<std::string> submit(const std::vector<std::string>& args, const std::string& script) override;
  Result<std::vector<JobState>> queue(const std::vector<std::string>& ids) override;
  Result<std::vector<JobState>> ended(const std::vector<std::string>& ids) override;
  Result<std::string> findByMarker(const std::string& marker) override;
  Status cancel(const std::vector<std::string>& ids) override;
  CallCounts counts() const override;

 private:
  struct Output {
    bool ran = false;
    int exit_code = -1;
    std::string out, err, message;
  };
  Output run(const std::string& command, std::vector<std::string> args);
  Result<std::vector<JobState>> viaSacct(const std::string& list);
  Result<std::vector<JobState>> viaScontrol(const std::vector<std::string>& ids);

  CommandsConfig cfg_;
  std::atomic<int> accounting_{0};  // 0 unknown, 1 sacct works, 2 no accounting
  mutable std::mutex mu_;
  CallCounts counts_;
};

}  // namespace dspy::orchestrator::slurm
