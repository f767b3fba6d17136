// SlurmExecutor: runs `slurm` class tasks as Slurm batch jobs. launch() renders the
// payload's template (SlurmScript) into the work directory, writes the job's row
// (SUBMITTING) durably, runs sbatch and returns; one tracker thread then polls all
// tracked jobs with one squeue call per tick (plus one sacct or scontrol call for the
// jobs that ended), records each change with its event (slurm_job_submitted,
// slurm_job_started, slurm_job_completed) and finishes the attempt when the job ends.
// Jobs outlive the orchestrator: at shutdown they are detached, after a restart the
// same attempt is launched again and finds its job in the store (or, if the process
// died between sbatch and the store, by the job's marker) and adopts it; nothing is
// submitted twice. While slurmctld is unreachable, sbatch and polling back off until
// `unreachable_deadline`, then the attempts fail with that reason.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "orchestrator/executors/Executor.h"
#include "orchestrator/slurm/SlurmCommands.h"
#include "orchestrator/slurm/SlurmJobs.h"

namespace dspy::orchestrator {

struct SlurmConfig {
  std::string templates_dir = "/etc/dspy-agent/slurm";
  std::string work_dir;  // scripts and job output; empty: <store.dir>/slurm
  std::string default_template = "command";
  slurm::CommandsConfig commands;
  std::int64_t poll_min_ms = 250;   // the tick right after a submission or a change
  std::int64_t poll_max_ms = 5000;  // doubled up to this while nothing changes
  std::int64_t unreachable_deadline_s = 600;
  std::int64_t submit_wait_ms = 15'000;  // POST /queue/submit waits this long for the job id
  int lost_after_misses = 3;             // ticks a job may be missing from Slurm entirely
  int output_tail_bytes = 4096;          // of the job's output, in the task's result
};

struct SlurmStats {
  std::int64_t submitted = 0, completed = 0, failed = 0, refused = 0, adopted = 0;
  std::int64_t ticks = 0;
  std::int64_t tracked = 0;
  double last_tick_seconds = 0;
  bool reachable = true;
  std::string last_error;
  slurm::CallCounts calls;
};

class SlurmExecutor final : public Executor {
 public:
  SlurmExecutor(SlurmConfig cfg, SlurmJobStore& store, std::shared_ptr<slurm::SlurmCommands> commands);
  ~SlurmExecutor() override;

  std::string kind() const override { return "slurm"; }
  Status validate(const Payload& payload) const override;
  ExecOutcome execute(const ExecRequest& req, std::stop_token cancel) override;  // launch + wait
  bool asynchronous() const override { return true; }
  bool resumable() const override { return true; }
  void launch(const ExecRequest& req, std::stop_token cancel, Finish finish) override;
  void detach() override;

  // Starts and stops the tracker thread (stop() also detaches).
  void start();
  void stop();

  struct Submission {
    std::string job_id;  // empty when refused
    std::string error;
  };
  // Waits up to `wait` for the sbatch answer of the task's current attempt.
  std::optional<Submission> awaitSubmission(const std::string& task_id, std::chrono::milliseconds wait);
  // The job script a payload renders to (for `dspy-agent` checks and tests).
  Result<std::string> render(const Payload& payload) const;
  SlurmStats stats() const;
  // "ok", or why not (slurmctld unreachable since ...).
  std::string health() const;
  const SlurmConfig& config() const { return cfg_; }

 private:
  struct Tracked {
    SlurmJobRecord rec;
    Finish finish;
    bool cancel_asked = false;
    bool started = false;  // slurm_job_started went out
    int misses = 0;
    std::unique_ptr<std::stop_callback<std::function<void()>>> on_cancel;
  };
  struct Change {
    SlurmJobRecord rec;
    std::vector<Event> events;
    Finish finish;  // set when the job ended
    ExecOutcome outcome;
  };

  Result<std::string> templateText(const std::string& name) const;
  // Writes `rec` (and its events) and waits until it is durable.
  Status putNow(const SlurmJobRecord& rec, std::vector<Event> events);
  void track(SlurmJobRecord rec, std::stop_token cancel, Finish finish);
  void noteSubmission(const std::string& task_id, Submission s);
  void loop(std::stop_token stop);
  void tick(std::unique_lock<std::mutex>& lock, bool* changed);
  void apply(Tracked& t, const slurm::JobState& st, std::vector<Change>& changes);
  void end(Tracked& t, std::vector<Change>& changes);
  void commit(std::vector<Change>& changes);
  ExecOutcome outcomeOf(const SlurmJobRecord& rec) const;
  Event jobEvent(const std::string& type, const SlurmJobRecord& rec) const;
  std::int64_t nowMs() const;

  SlurmConfig cfg_;
  SlurmJobStore& store_;
  std::shared_ptr<slurm::SlurmCommands> cmds_;

  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::map<std::string, Tracked> tracked_;  // by job id
  std::atomic<bool> woken_{false};  // a submission or cancel: tick within poll_min
  bool detached_ = false;
  std::chrono::steady_clock::time_point last_ok_;
  bool reachable_ = true;
  std::string last_error_;
  SlurmStats stats_;
  std::mutex cancel_mu_;
  std::vector<std::string> cancel_requests_;  // job ids
  std::mutex sub_mu_;
  std::condition_variable sub_cv_;
  std::map<std::string, Submission> submissions_;  // by task id, the latest few thousand
  std::vector<std::string> submission_order_;
  std::jthread thread_;
};

}  // namespace dspy::orchestrator
