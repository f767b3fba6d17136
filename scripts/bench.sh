#!/usr/bin/env bash
# Runs the benchmarks of tests/bench against a release build and writes their JSON to
# build/release/bench/. B1 needs dockerd (scripts/test-env.sh up docker) and the local
# images; B6 needs the Kafka broker (scripts/test-env.sh up kafka); B7 needs Slurm
# (scripts/test-env.sh up slurm); B2-B4, B2b, B8, B9 and B10 need nothing running.
# B2-cores runs B2 pinned to 1 and then 2 cores (taskset).
# Usage: bench.sh [b1|b1-28|b2|b2b|b2-cores|b3|b4|b5|b6|b7|b9|b10 ...]   (default: b2 b3 b4)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
build="$ROOT/build/release"
out="$build/bench"
mkdir -p "$out"
cmake --build "$build" --target orchestrator b2_submit b2b_b9_backlog b3_b4_engine b5_workflow b6_events >/dev/null
which=("$@")
((${#which[@]})) || which=(b2 b3 b4)
for b in "${which[@]}"; do
  case "$b" in
    b1) "$VENV/bin/python" "$ROOT/tests/bench/b1_startup.py" ;;
    b1-28) "$VENV/bin/python" "$ROOT/tests/bench/b1_28_compose.py" ;;
    b2) log "B2 submit + B8 orchestrator RSS"; "$build/tests/b2_submit" "$build" --out "$out/b2_submit.json" ;;
    b2b) log "B2b batch submit vs SQLite alone"; "$build/tests/b2b_b9_backlog" "$build" --only b2b --out "$out/b2b.json" ;;
    b9) log "B9 a backlog of 1,000,000 tasks: RSS, kill -9, restart"
        "$build/tests/b2b_b9_backlog" "$build" --only b9 --out "$out/b9.json" ;;
    b2-cores)
      # The benchmark and the orchestrator it starts share the cores they are pinned to.
      for cpus in 0 0,1; do
        log "B2 pinned to CPU(s) $cpus"
        taskset -c "$cpus" "$build/tests/b2_submit" "$build" --out "$out/b2_cpus_${cpus/,/_}.json"
      done ;;
    b3) log "B3 dispatch"; "$build/tests/b3_b4_engine" "$out" --only b3 ;;
    b4) log "B4 limiter"; "$build/tests/b3_b4_engine" "$out" --only b4 ;;
    b5) log "B5 workflow"; "$build/tests/b5_workflow" "$out" --store memory; "$build/tests/b5_workflow" "$out" --store sqlite ;;
    b6) log "B6 events (Kafka at ${KAFKA_BROKERS:-$TEST_KAFKA_BROKERS})"
        KAFKA_BROKERS="${KAFKA_BROKERS:-$TEST_KAFKA_BROKERS}" "$build/tests/b6_events" "$out" ;;
    b7) log "B7 Slurm submission and tracking"; "$VENV/bin/python" "$ROOT/tests/bench/b7_slurm.py" ;;
    b10) log "B10 the Python package vs raw grpc.aio stubs"; "$VENV/bin/python" "$ROOT/tests/bench/b10_python_client.py" ;;
    *) die "unknown benchmark '$b' (b1, b1-28, b2, b2b, b2-cores, b3, b4, b5, b6, b7, b9, b10)" ;;
  esac
done
