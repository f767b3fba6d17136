#include "orchestrator/slurm/SlurmCommands.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "common/Subprocess.h"

extern char** environ;

namespace dspy::orchestrator::slurm {
namespace {

std::string joinIds(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ",") + id;
  return out;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

CliSlurmCommands::Output CliSlurmCommands::run(const std::string& command, std::vector<std::string> args) {
  SubprocessSpec spec;
  spec.argv.push_back(cfg_.bin_dir.empty() ? command : cfg_.bin_dir + "/" + command);
  spec.argv.insert(spec.argv.end(), std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
  spec.timeout = cfg_.timeout;
  spec.tail_bytes = 64 << 20;  // squeue over many jobs: keep it all
  if (!cfg_.conf.empty()) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string_view(*e).rfind("SLURM_CONF=", 0) != 0) env.emplace_back(*e);
    }
    env.push_back("SLURM_CONF=" + cfg_.conf);
    spec.env = std::move(env);
  }
  const SubprocessResult r = runSubprocess(spec);
  Output o;
  o.ran = r.spawn_error.empty() && !r.timed_out;
  o.exit_code = r.exit_code;
  o.out = r.out;
  o.err = r.err;
  o.message = trimmed(r.err.empty() ? r.out : r.err);
  if (!r.spawn_error.empty()) o.message = r.spawn_error;
  if (r.timed_out) o.message = command + " did not answer within " + std::to_string(cfg_.timeout.count()) + " ms";
  std::lock_guard lock(mu_);
  if (command == "sbatch") ++counts_.sbatch;
  if (command == "squeue") ++counts_.squeue;
  if (command == "sacct") ++counts_.sacct;
  if (command == "scontrol") ++counts_.scontrol;
  if (command == "scancel") ++counts_.scancel;
  if (!o.ran || o.exit_code != 0) ++counts_.failures;
  return o;
}

CallCounts CliSlurmCommands::counts() const {
  std::lock_guard lock(mu_);
  return counts_;
}

Result<std::string> CliSlurmCommands::submit(const std::vector<std::string>& args, const std::string& script) {
  std::vector<std::string> argv{"--parsable"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(script);
  Output o = run("sbatch", std::move(argv));
  if (!o.ran) return Error{"sbatch: " + o.message, ErrorKind::Unavailable};
  if (o.exit_code != 0) {
    // Slurm's own words, without the "sbatch: error: " prefixes.
    std::string msg;
    std::size_t start = 0;
    while (start < o.err.size()) {
      std::size_t nl = o.err.find('\n', start);
      if (nl == std::string::npos) nl = o.err.size();
      std::string line = o.err.substr(start, nl - start);
      for (const char* prefix : {"sbatch: error: ", "sbatch: "}) {
        if (line.rfind(prefix, 0) == 0) line = line.substr(std::string(prefix).size());
      }
      if (!line.empty()) msg += (msg.empty() ? "" : "; ") + line;
      start = nl + 1;
    }
    if (msg.empty()) msg = "exit code " + std::to_string(o.exit_code);
    return Error{"Slurm refused the job: " + msg, isUnreachable(o.err) ? ErrorKind::Unavailable : ErrorKind::InvalidArgument};
  }
  auto id = parseJobId(o.out);
  if (!id) return Error{"sbatch printed no job id: '" + trimmed(o.out).substr(0, 200) + "'", ErrorKind::Internal};
  return *id;
}

Result<std::vector<JobState>> CliSlurmCommands::queue(const std::vector<std::string>& ids) {
  if (ids.empty()) return std::vector<JobState>{};
  Output o = run("squeue", {"-h", "-t", "all", "-j", joinIds(ids), "-o", kSqueueFormat});
  if (!o.ran) return Error{"squeue: " + o.message, ErrorKind::Unavailable};
  if (o.exit_code != 0) {
    // squeue fails when none of the ids is known any more: that is "none listed".
    if (o.err.find("Invalid job id") != std::string::npos) return std::vector<JobState>{};
    return Error{"squeue: " + o.message, isUnreachable(o.err) ? ErrorKind::Unavailable : ErrorKind::Internal};
  }
  return parseSqueue(o.out);
}

Result<std::vector<JobState>> CliSlurmCommands::viaSacct(const std::string& list) {
  Output o = run("sacct", {"-n", "-P", "-X", "-j", list, "-o", kSacctFields});
  if (!o.ran) return Error{"sacct: " + o.message, ErrorKind::Unavailable};
  if (o.exit_code != 0) {
    if (o.err.find("accounting storage is disabled") != std::string::npos ||
        o.err.find("not running a supported accounting_storage plugin") != std::string::npos) {
      accounting_ = 2;
      return Error{"no accounting", ErrorKind::FailedPrecondition};
    }
    return Error{"sacct: " + o.message, isUnreachable(o.err) ? ErrorKind::Unavailable : ErrorKind::Internal};
  }
  accounting_ = 1;
  return parseSacct(o.out);
}

Result<std::vector<JobState>> CliSlurmCommands::viaScontrol(const std::vector<std::string>& ids) {
  // One call lists every job slurmctld still holds; ours are picked out.
  Output o = run("scontrol", {"show", "job", "-o"});
  if (!o.ran) return Error{"scontrol: " + o.message, ErrorKind::Unavailable};
  if (o.exit_code != 0) {
    if (o.out.find("No jobs in the system") != std::string::npos || o.err.find("No jobs") != std::string::npos) {
      return std::vector<JobState>{};
    }
    return Error{"scontrol: " + o.message, isUnreachable(o.err) ? ErrorKind::Unavailable : ErrorKind::Internal};
  }
  if (o.out.rfind("No jobs in the system", 0) == 0) return std::vector<JobState>{};
  auto all = parseScontrol(o.out);
  if (!all) return all;
  const std::set<std::string> wanted(ids.begin(), ids.end());
  std::vector<JobState> out;
  for (auto& j : all.value()) {
    if (wanted.count(j.job_id)) out.push_back(std::move(j));
  }
  return out;
}

Result<std::vector<JobState>> CliSlurmCommands::ended(const std::vector<std::string>& ids) {
  if (ids.empty()) return std::vector<JobState>{};
  const bool try_sacct = cfg_.accounting == "sacct" || (cfg_.accounting == "auto" && accounting_ != 2);
  if (try_sacct) {
    auto r = viaSacct(joinIds(ids));
    if (r || r.fullError().kind != ErrorKind::FailedPrecondition || cfg_.accounting == "sacct") return r;
  }
  return viaScontrol(ids);
}

Result<std::string> CliSlurmCommands::findByMarker(const std::string& marker) {
  Output o = run("squeue", {"-h", "-t", "all", "-o", "%F|%k"});
  if (!o.ran) return Error{"squeue: " + o.message, ErrorKind::Unavailable};
  if (o.exit_code != 0) {
    return Error{"squeue: " + o.message, isUnreachable(o.err) ? ErrorKind::Unavailable : ErrorKind::Internal};
  }
  std::size_t start = 0;
  while (start < o.out.size()) {
    std::size_t nl = o.out.find('\n', start);
    if (nl == std::string::npos) nl = o.out.size();
    const std::string line = o.out.substr(start, nl - start);
    const std::size_t bar = line.find('|');
    if (bar != std::string::npos && line.substr(bar + 1) == marker) return line.substr(0, bar);
    start = nl + 1;
  }
  return Error{"no job carries " + marker, ErrorKind::NotFound};
}

Status CliSlurmCommands::cancel(const std::vector<std::string>& ids) {
  if (ids.empty()) return Status::Ok();
  Output o = run("scancel", ids);
  if (!o.ran) return Error{"scancel: " + o.message, ErrorKind::Unavailable};
  if (o.exit_code != 0) {
    return Error{"scancel: " + o.message, isUnreachable(o.err) ? ErrorKind::Unavailable : ErrorKind::Internal};
  }
  return Status::Ok();
}

}  // namespace dspy::orchestrator::slurm
