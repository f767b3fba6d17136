// The Slurm series, read from the executor at every scrape: the contract's
// slurm_jobs_submitted_total, slurm_jobs_completed_total and slurm_jobs_failed_total,
// plus orchestrator_slurm_tracked_jobs, orchestrator_slurm_reachable,
// orchestrator_slurm_poll_ticks_total, orchestrator_slurm_last_tick_seconds and
// orchestrator_slurm_commands_total{command}.
#pragma once

#include "common/Metrics.h"
#include "orchestrator/slurm/SlurmExecutor.h"

namespace dspy::orchestrator {

// `slurm` must outlive the scrapes.
void attachSlurmMetrics(Metrics& metrics, const SlurmExecutor& slurm);

}  // namespace dspy::orchestrator
