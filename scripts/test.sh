#!/usr/bin/env bash
# The test command. On a fresh Debian 12 machine (root) it installs what it needs,
# starts the real test environment (dockerd, registry, Slurm, Kafka), builds, and runs
# CTest and pytest; with --sanitizers it also runs the tests under ASan+UBSan and the
# daemon tests under TSan and every fuzz target for a bounded time. Exits non-zero on any failure and ends with the CTest and
# pytest summary lines.
# Usage: test.sh [--sanitizers] [--keep-env]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

sanitizers=0
keep_env=0
for a in "$@"; do
  case "$a" in
    --sanitizers) sanitizers=1 ;;
    --keep-env) keep_env=1 ;;
    *) die "usage: test.sh [--sanitizers] [--keep-env]" ;;
  esac
done

t0=$SECONDS
bash "$here/install-deps.sh"
# Only what this run starts is stopped at its end: a Docker that runs as a system
# service, or the demo's, keeps running (and keeps its containers).
started=()
for c in docker registry slurm kafka; do
  bash "$here/test-env.sh" status "$c" >/dev/null 2>&1 || started+=("$c")
done
if ((keep_env == 0)); then
  trap 'wait; ((${#started[@]} == 0)) || bash "$here/test-env.sh" down "${started[@]}" >/dev/null 2>&1 || true' EXIT
fi
log "test environment: ${started[*]:-nothing} to start, the rest already runs"
export KAFKA_BROKERS="$TEST_KAFKA_BROKERS"
bash "$here/test-env.sh" up >"$STATE/logs/test-env-up.log" 2>&1 &
env_pid=$!
bash "$here/build.sh" release
wait "$env_pid" || { cat "$STATE/logs/test-env-up.log" >&2; die "the test environment did not start"; }
cat "$STATE/logs/test-env-up.log" >&2
bash "$here/build-images.sh"

rc=0
summaries=()
run_ctest() {  # run_ctest PRESET [ctest args...]
  local preset="$1"; shift
  local out="$STATE/logs/ctest-$preset.log"
  log "ctest ($preset)"
  set +e
  (cd "$ROOT/build/$preset" && ctest --output-on-failure --timeout 300 -j2 "$@") 2>&1 | tee "$out"
  local status=${PIPESTATUS[0]}
  set -e
  ((status == 0)) || rc=1
  summaries+=("$(grep -E 'tests passed|tests failed' "$out" | tail -n 1)")
}

run_ctest release
if ((sanitizers)); then
  bash "$here/build.sh" asan
  ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="suppressions=$ROOT/tests/sanitizers/lsan.supp" \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run_ctest asan
  # ThreadSanitizer covers the concurrent parts: the unit tests and the daemons under the
  # daemon tests. The CLI, install and config-file tests run in the release and ASan passes.
  bash "$here/build.sh" tsan unit_tests daemon_tests
  # librdkafka starts its threads with C11 thrd_create, which ThreadSanitizer does not
  # see (a thread it does not know crashes in its allocator): under TSan nothing makes a
  # Kafka client, so the daemons run without KAFKA_BROKERS and the tests that need a
  # producer or consumer (env.*, kafka.*, the librdkafka settings check) are left to the
  # release and ASan runs.
  unset KAFKA_BROKERS
  TSAN_OPTIONS="halt_on_error=1:suppressions=$ROOT/tests/sanitizers/tsan.supp" \
    run_ctest tsan -E "^env[.]|^kafka[.]|librdkafka|^cli[.]|^deploy[.]|_NOT_BUILT"
  export KAFKA_BROKERS="$TEST_KAFKA_BROKERS"
  # Fuzzing (libFuzzer, ASan+UBSan): every target a bounded time on its seed corpus; a
  # crash, leak, hang or out-of-memory fails the run (the input is kept in build/fuzz/).
  fuzz_seconds="${DSPY_FUZZ_SECONDS:-10}"
  log "fuzzing every target for ${fuzz_seconds} s"
  set +e
  bash "$here/fuzz.sh" all "$fuzz_seconds" 2>&1 | tee "$STATE/logs/fuzz.log"
  fuzz_status=${PIPESTATUS[0]}
  set -e
  if ((fuzz_status == 0)); then
    runs=$(awk '/number_of_executed_units/ {n += $NF; t++} END {printf "%d targets, %d inputs", t, n}' "$STATE/logs/fuzz.log")
    summaries+=("fuzz: $runs in ${fuzz_seconds} s each, no crash, leak or hang")
  else
    rc=1
    summaries+=("fuzz: FAILED (see $STATE/logs/fuzz.log and build/fuzz/)")
  fi
fi

run_pytest() {  # run_pytest PRESET LOG [pytest args...]
  local preset="$1" out="$2"
  shift 2
  log "pytest (daemons from build/$preset)"
  set +e
  (cd "$ROOT/python" && DSPY_BUILD_DIR="$ROOT/build/$preset" "$VENV/bin/python" -m pytest -q --durations=15 "$@" 2>&1) |
    tee "$out"
  local status=${PIPESTATUS[0]}
  set -e
  ((status == 0)) || rc=1
}

if ((sanitizers)); then
  # The real-Docker paths (Docker client, lifecycle, tasks, streams) run only under
  # pytest: run it once against the ASan+UBSan daemons and fail on any report.
  rm -rf /tmp/dspy-py-* 2>/dev/null || true
  ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="suppressions=$ROOT/tests/sanitizers/lsan.supp" \
    UBSAN_OPTIONS=print_stacktrace=1 run_pytest asan "$STATE/logs/pytest-asan.log" -m "not release_pass"
  if grep -lE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" /tmp/dspy-py-*/daemon.log 2>/dev/null; then
    log "sanitizer reports in the daemon logs above"
    rc=1
  fi
  summaries+=("$(grep -E '[0-9]+ (passed|failed)' "$STATE/logs/pytest-asan.log" | tail -n 1) (pytest, ASan daemons)")
fi
rm -rf /tmp/dspy-py-* 2>/dev/null || true
if ((sanitizers)); then
  # Everything else ran against the ASan daemons above (the same code, checked); the
  # release pass runs what only means something there: the soak's memory figures, the
  # systemd tests, which install build/release, and the hostile-input tests' memory
  # bounds (they ran under ASan too).
  run_pytest release "$STATE/logs/pytest.log" -m "release_pass or both_passes"
else
  run_pytest release "$STATE/logs/pytest.log"
fi

log "finished in $((SECONDS - t0)) s; summaries follow (CTest per build: release$( ((sanitizers)) && echo ', asan, tsan'), then pytest)"
# The summary lines are also kept in a file, for a caller (.ci/run) that runs more after.
{
  for s in "${summaries[@]}"; do echo "$s"; done
  grep -E '^(=+ )?[0-9]+ (passed|failed)|no tests ran' "$STATE/logs/pytest.log" | tail -n 1
} | tee "$STATE/logs/test-summary.txt"
exit $rc
