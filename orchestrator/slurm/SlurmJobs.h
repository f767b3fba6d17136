// SlurmJobRecord and SlurmJobStore: every Slurm job the orchestrator submitted, one row
// per (task, attempt), kept in the orchestrator's store so that a restart adopts the jobs
// it tracked instead of submitting them again. A row is written before sbatch runs
// ("SUBMITTING", with the job's marker), so a crash between sbatch and the store still
// finds the job by its marker.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/Result.h"
#include "orchestrator/events/Event.h"

namespace dspy::orchestrator {

struct SlurmJobRecord {
  std::string task_id;
  int attempt = 1;
  std::string job_id;  // empty until sbatch answered
  // Slurm's state word (PENDING, RUNNING, COMPLETED, TIMEOUT, ...) or ours: SUBMITTING
  // (sbatch not answered yet), REFUSED (sbatch said no), LOST (Slurm forgot the job
  // before its end was seen), UNREACHABLE (slurmctld away past the deadline).
  std::string state = "SUBMITTING";
  bool terminal = false;
  std::string reason;  // Slurm's reason (NonZeroExitCode, TimeLimit, Resources, ...)
  std::string error;   // set when the job did not succeed
  int exit_code = -1;  // of the batch script; -1 = not known
  int exit_signal = 0;
  std::int64_t submit_ms = 0, start_ms = 0, end_ms = 0, updated_ms = 0;
  std::string template_name;
  std::string script_path;
  std::string output_path;  // with %j resolved once the id is known
  std::string marker;       // the job's --comment
  std::string nodes;
};

// The status word of a job for clients: Slurm's state (or ours) in lower case.
inline std::string slurmStatusWord(std::string state) {
  for (char& c : state) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return state;
}

class SlurmJobStore {
 public:
  using Done = std::function<void(Status)>;
  virtual ~SlurmJobStore() = default;
  // Inserts or replaces the row of (task_id, attempt); `events` are stored in the same
  // transaction (the outbox).
  virtual void putSlurmJob(const SlurmJobRecord& job, std::vector<Event> events, Done done) = 0;
  virtual Result<std::optional<SlurmJobRecord>> getSlurmJob(const std::string& task_id, int attempt) = 0;
  // The row of the task's latest attempt.
  virtual Result<std::optional<SlurmJobRecord>> latestSlurmJob(const std::string& task_id) = 0;
};

}  // namespace dspy::orchestrator
