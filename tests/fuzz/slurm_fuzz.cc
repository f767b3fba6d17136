// libFuzzer target: the parsers of squeue, sacct, scontrol and sbatch output, and the
// time and exit-code fields, on any text: a result or an error naming the line, never a
// crash. The first byte picks the parser, the rest is the command's output.
// Build and run: scripts/fuzz.sh slurm [seconds]   (seeds: tests/fuzz/slurm/).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "orchestrator/slurm/SlurmParse.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dspy::orchestrator::slurm;
  using dspy::Result;
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  Result<std::vector<JobState>> jobs = std::vector<JobState>{};
  switch (data[0] % 4) {
    case 0: jobs = parseSqueue(text); break;
    case 1: jobs = parseSacct(text); break;
    case 2: jobs = parseScontrol(text); break;
    default: {
      (void)parseJobId(text);
      (void)parseSlurmTime(text);
      int code = 0, sig = 0;
      (void)parseExitCode(text, &code, &sig);
      (void)meaningOf(text);
      (void)isUnreachable(text);
      return 0;
    }
  }
  if (jobs.ok()) {
    std::vector<const JobState*> parts;
    for (const auto& j : jobs.value()) {
      (void)meaningOf(j.state);
      parts.push_back(&j);
    }
    if (!parts.empty()) (void)aggregate(parts.front()->job_id, parts);
  } else if (jobs.error().empty()) {
    __builtin_trap();
  }
  return 0;
}
