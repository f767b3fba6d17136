#!/usr/bin/env bash
# The soak of docs/reliability.md: both daemons under mixed load (tasks, workflow runs,
# container tasks, events to Kafka and a live reader, a service killed each minute) for
# SECONDS (default 600), sampling RSS, descriptors, threads and the WAL every 2 s; fails
# if they grow or anything is lost. The test command runs the same test for 60 s.
# Usage: scripts/soak.sh [SECONDS] [PRESET]   (PRESET: release, asan; default release)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
seconds="${1:-600}"
preset="${2:-release}"
[[ "$seconds" =~ ^[0-9]+$ ]] || die "usage: soak.sh [SECONDS] [PRESET]"
[[ -x "$ROOT/build/$preset/orchestrator/orchestrator" ]] || die "build first: bash scripts/build.sh $preset"
bash "$here/test-env.sh" up >"$STATE/logs/test-env-up.log" 2>&1 || { cat "$STATE/logs/test-env-up.log" >&2; die "the test environment did not start"; }
bash "$here/build-images.sh" >/dev/null
export KAFKA_BROKERS="$TEST_KAFKA_BROKERS"
cd "$ROOT/python"
DSPY_SOAK_SECONDS="$seconds" DSPY_BUILD_DIR="$ROOT/build/$preset" "$VENV/bin/python" -m pytest -q -s tests/test_soak.py
