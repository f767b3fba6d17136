// What Slurm's commands print, turned into job states: squeue (one line per job or
// array element), scontrol show job -o and sacct -P. Pure functions over text, so that
// tests and fuzzers feed them anything. Also the map from every Slurm job state to what
// it means for a task.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/Result.h"

namespace dspy::orchestrator::slurm {

enum class Phase {
  Queued,     // not running yet (PENDING, CONFIGURING, REQUEUED, ...)
  Running,    // holds its nodes (RUNNING, COMPLETING, SUSPENDED, ...)
  Succeeded,  // COMPLETED
  Failed,     // FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, ...
  Cancelled,  // CANCELLED
  Unknown,    // a word this build does not know: polled further, never taken as an end
};

struct StateMeaning {
  Phase phase = Phase::Unknown;
  bool terminal = false;
  // For a failure: would another attempt (a new job) have a chance? True for faults of
  // the cluster (NODE_FAIL, BOOT_FAIL, PREEMPTED), false for the job's own end.
  bool retryable = false;
  const char* what = "";  // a few words for error messages
};

// `state` as Slurm prints it; sacct's "CANCELLED by 0" and squeue's "COMPLETING+" count
// by their first word.
StateMeaning meaningOf(std::string_view state);
std::string baseState(std::string_view state);

struct JobState {
  std::string job_id;        // the id sbatch returned (for an array: the array's id)
  std::string element;       // squeue's own id of an array element ("19_3"), else = job_id
  std::string state;         // Slurm's word, e.g. RUNNING
  std::string reason;        // "None" is given as empty
  std::int64_t submit_ms = 0, start_ms = 0, end_ms = 0;  // 0 = unknown
  std::optional<int> exit_code;  // of the batch script
  std::optional<int> exit_signal;
  std::string nodes;
};

// The squeue output format these parsers read: array id, element id, state, reason,
// submit, start, end, nodes.
inline constexpr const char* kSqueueFormat = "%F|%i|%T|%r|%V|%S|%e|%N";
// sacct's fields (-P, parsable: '|' separated).
inline constexpr const char* kSacctFields = "JobIDRaw,JobID,State,ExitCode,Submit,Start,End,Reason,NodeList";

// A line that does not have the expected fields is an error naming the line; an
// empty text is no jobs.
Result<std::vector<JobState>> parseSqueue(std::string_view text);
Result<std::vector<JobState>> parseSacct(std::string_view text);
// `scontrol show job -o`: one job per line of Key=Value words.
Result<std::vector<JobState>> parseScontrol(std::string_view text);

// The states of one tracked job from its lines (one, or one per array element): for an
// array, running while any element runs, ended when all ended, succeeded only if all did
// (then the first failed element gives the state, reason and exit code).
JobState aggregate(const std::string& job_id, const std::vector<const JobState*>& parts);

// Slurm's times ("2026-11-27T09:05:02", local time) in ms since the epoch; 0 for
// "N/A", "Unknown", "None" and anything unparsable.
std::int64_t parseSlurmTime(std::string_view text);
// "3:0" -> exit 3, signal 0.
bool parseExitCode(std::string_view text, int* code, int* signal);

// sbatch --parsable prints "ID" or "ID;cluster".
std::optional<std::string> parseJobId(std::string_view sbatch_out);

// Does this message from a Slurm command mean slurmctld could not be reached (try again
// later) rather than a refusal?
bool isUnreachable(std::string_view message);

}  // namespace dspy::orchestrator::slurm
