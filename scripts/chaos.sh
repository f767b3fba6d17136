#!/usr/bin/env bash
# The chaos scenarios of docs/reliability.md, run against the built daemons (release by
# default) with the test environment up, each printing its counts (lost, done twice,
# recovery). The same tests run in the test command; this runs only them, verbosely.
# Usage: scripts/chaos.sh [PRESET]   (PRESET: release, asan; default release)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
preset="${1:-release}"
[[ -x "$ROOT/build/$preset/orchestrator/orchestrator" ]] || die "build first: bash scripts/build.sh $preset"
bash "$here/test-env.sh" up >"$STATE/logs/test-env-up.log" 2>&1 || { cat "$STATE/logs/test-env-up.log" >&2; die "the test environment did not start"; }
export KAFKA_BROKERS="$TEST_KAFKA_BROKERS"
cd "$ROOT/python"
tests=(
  tests/test_chaos.py
  "tests/test_orchestrator.py::test_sigkill_under_load_every_task_finishes_exactly_once"
  "tests/test_orchestrator.py::test_a_backlog_beyond_queue_in_memory_waits_in_the_store_survives_kill_9_and_runs_once"
  "tests/test_workflows.py::test_sigkill_mid_run_then_the_run_completes_without_repeating_finished_steps"
  "tests/test_env_manager.py::test_env_manager_killed_with_sigkill_adopts_its_containers"
  "tests/test_env_manager.py::test_a_killed_container_is_noticed_and_restarted"
  "tests/test_env_manager.py::test_docker_restarted_under_a_running_env_manager"
  "tests/test_slurm.py::test_slurmctld_stopped_and_started_while_jobs_are_tracked"
  "tests/test_slurm.py::test_sigkill_while_a_job_runs_then_the_job_is_adopted_and_finishes_once"
)
DSPY_BUILD_DIR="$ROOT/build/$preset" "$VENV/bin/python" -m pytest -q -s "${tests[@]}"
log "Kafka scenarios (broker away 30 s, killed mid-burst, SIGTERM with the broker away): CTest"
(cd "$ROOT/build/$preset" && ctest --output-on-failure -R "kafka[.].*(broker away|killed mid-burst|SIGTERM)")
