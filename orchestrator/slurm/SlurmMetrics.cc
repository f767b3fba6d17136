#include "orchestrator/slurm/SlurmMetrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>

namespace dspy::orchestrator {
namespace {


}  // namespace

void attachSlurmMetrics(Metrics& metrics, const SlurmExecutor& slurm) {
  auto& r = metrics.registry();
  auto counter = [&r](const char* name, const char* help) {
    return CounterFollower{&prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({})};
  };
  auto gauge = [&r](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
  };
  struct State {
    CounterFollower submitted, completed, failed, ticks;
    std::map<std::string, CounterFollower> calls;
    prometheus::Gauge *tracked, *reachable, *last_tick;
  };
  auto& calls = prometheus::BuildCounter()
                    .Name("orchestrator_slurm_commands_total")
                    .Help("Slurm commands run, by command")
                    .Register(r);
  auto st = std::make_shared<State>(State{
      counter("slurm_jobs_submitted_total", "Slurm jobs submitted (sbatch accepted them)"),
      counter("slurm_jobs_completed_total", "Slurm jobs that ended COMPLETED"),
      counter("slurm_jobs_failed_total", "Slurm jobs that ended otherwise, or that sbatch refused"),
      counter("orchestrator_slurm_poll_ticks_total", "Slurm polling ticks (one squeue call each)"),
      {},
      gauge("orchestrator_slurm_tracked_jobs", "Slurm jobs being tracked"),
      gauge("orchestrator_slurm_reachable", "1 when slurmctld answered the last call"),
      gauge("orchestrator_slurm_last_tick_seconds", "Duration of the last polling tick")});
  for (const char* cmd : {"sbatch", "squeue", "sacct", "scontrol", "scancel"}) {
    st->calls.emplace(cmd, CounterFollower{&calls.Add({{"command", cmd}})});
  }
  metrics.addScrapeHook([&slurm, st] {
    const SlurmStats s = slurm.stats();
    st->submitted.to(static_cast<double>(s.submitted));
    st->completed.to(static_cast<double>(s.completed));
    st->failed.to(static_cast<double>(s.failed));
    st->ticks.to(static_cast<double>(s.ticks));
    st->calls.at("sbatch").to(static_cast<double>(s.calls.sbatch));
    st->calls.at("squeue").to(static_cast<double>(s.calls.squeue));
    st->calls.at("sacct").to(static_cast<double>(s.calls.sacct));
    st->calls.at("scontrol").to(static_cast<double>(s.calls.scontrol));
    st->calls.at("scancel").to(static_cast<double>(s.calls.scancel));
    st->tracked->Set(static_cast<double>(s.tracked));
    st->reachable->Set(s.reachable ? 1 : 0);
    st->last_tick->Set(s.last_tick_seconds);
  });
}

}  // namespace dspy::orchestrator
