#!/usr/bin/env bash
# The test environment's Slurm is real: a batch job runs on the local node to COMPLETED
# and writes the output it was asked to.
set -euo pipefail
out="$(mktemp -d)/job.out"
token="slurm-smoke-$RANDOM$RANDOM"
job=$(sbatch --parsable --job-name=dspy-smoke --output="$out" --wrap "echo $token")
[[ "$job" =~ ^[0-9]+$ ]] || { echo "sbatch did not return a job id: $job" >&2; exit 1; }
deadline=$((SECONDS + 60))
state=""
while ((SECONDS < deadline)); do
  state=$(scontrol show job -o "$job" | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
  case "$state" in
    COMPLETED) break ;;
    FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE) echo "job $job ended $state" >&2; exit 1 ;;
  esac
  sleep 0.2
done
[[ "$state" == COMPLETED ]] || { echo "job $job not COMPLETED within 60 s (state $state)" >&2; exit 1; }
grep -qx "$token" "$out" || { echo "job output lacks the token: $(cat "$out")" >&2; exit 1; }
echo "job $job COMPLETED with the expected output"
