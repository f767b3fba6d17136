# Shared shell helpers for the project's scripts. Source it; do not run it.
# shellcheck shell=bash
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Everything a script starts or downloads lives under one ignored state folder.
STATE="${DSPY_STATE_DIR:-$ROOT/.state}"
VENV="$STATE/venv"
mkdir -p "$STATE/logs" "$STATE/pids"

# The test environment's own ports: chosen so that they cannot collide with the demo
# stack (which publishes 6379, 8082, 11435, 19000, 2181, 9092, 9090) or the daemons.
TEST_REGISTRY_ADDR="127.0.0.1:${DSPY_TEST_REGISTRY_PORT:-5000}"
TEST_KAFKA_PORT="${DSPY_TEST_KAFKA_PORT:-39092}"
TEST_KAFKA_CONTROLLER_PORT="${DSPY_TEST_KAFKA_CONTROLLER_PORT:-39093}"
TEST_KAFKA_BROKERS="127.0.0.1:$TEST_KAFKA_PORT"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# wait_for DESCRIPTION TIMEOUT_SECONDS COMMAND...: polls COMMAND every 0.2 s until it
# succeeds or the deadline passes.
wait_for() {
  local what="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then log "timed out after ${timeout}s waiting for $what"; return 1; fi
    sleep 0.2
  done
}

# pid_alive NAME: true when the PID recorded in $STATE/pids/NAME.pid runs.
pid_alive() {
  local f="$STATE/pids/$1.pid"
  [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# stop_pid NAME [TIMEOUT]: TERM the recorded PID, wait, then KILL; removes the PID file.
stop_pid() {
  local name="$1" timeout="${2:-15}" f="$STATE/pids/$1.pid" pid
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + timeout))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# port_holder PORT: prints "PID/NAME" of the process listening on 127.0.0.1:PORT (or on
# any address), or nothing when the port is free.
port_holder() {
  local port="$1" line
  line=$(ss -H -ltnp "( sport = :$port )" 2>/dev/null | head -n 1)
  [[ -n "$line" ]] || return 0
  if [[ "$line" =~ users:\(\(\"([^\"]+)\",pid=([0-9]+) ]]; then
    printf 'pid %s (%s)' "${BASH_REMATCH[2]}" "${BASH_REMATCH[1]}"
  else
    printf 'an unknown process'
  fi
}

# require_free_port WHAT PORT: fails at once, naming the holder, when PORT is taken.
require_free_port() {
  local what="$1" port="$2" holder
  holder=$(port_holder "$port")
  [[ -z "$holder" ]] || die "$what cannot listen on port $port: it is held by $holder"
}

# kafka_write_config (deploy/kafka/kafka-config.sh): a single-node KRaft broker's config.
. "$ROOT/deploy/kafka/kafka-config.sh"

# The Kafka broker's class path (Maven, cached under $KAFKA_DIR/libs): the test
# environment's broker, private test brokers and the demo's kafka image use it.
KAFKA_DIR="$STATE/kafka"
KAFKA_VERSION_POM="$ROOT/deploy/kafka/pom.xml"
kafka_fetch() {
  if [[ -f "$KAFKA_DIR/libs/.complete" ]] && cmp -s "$KAFKA_VERSION_POM" "$KAFKA_DIR/libs/.pom"; then return; fi
  log "resolving the Kafka broker class path with Maven (cached under $KAFKA_DIR/libs)"
  rm -rf "$KAFKA_DIR/libs"
  (cd "$ROOT/deploy/kafka" && mvn -q -B dependency:copy-dependencies \
      -DoutputDirectory="$KAFKA_DIR/libs" -Dmdep.includeScope=runtime)
  cp "$KAFKA_VERSION_POM" "$KAFKA_DIR/libs/.pom"
  touch "$KAFKA_DIR/libs/.complete"
}

# Writes a single-node slurm.conf (the recipe of TEST-ENVIRONMENT.md): FILE HEADER
# CLUSTER DIR LOGDIR [CTLD_PORT SLURMD_PORT]. State, spool and PID files go under DIR,
# logs under LOGDIR; the ports default to Slurm's own.
slurm_write_config() {
  local file="$1" header="$2" cluster="$3" dir="$4" logs="$5" cport="${6:-}" dport="${7:-}"
  local host cpus mem
  host="$(hostname -s)"
  cpus="$(nproc)"
  mem=$(( $(free -m | awk '/^Mem:/{print $2}') - 1024 ))
  mkdir -p "$dir/state" "$dir/spool" "$logs" "$(dirname "$file")"
  {
    echo "# $header"
    echo "ClusterName=$cluster"
    echo "SlurmctldHost=$host"
    [[ -n "$cport" ]] && echo "SlurmctldPort=$cport"
    [[ -n "$dport" ]] && echo "SlurmdPort=$dport"
    cat <<CFG
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.run.pid
SlurmdPidFile=$dir/slurmd.run.pid
SlurmctldLogFile=$logs/slurmctld.log
SlurmdLogFile=$logs/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CFG
  } >"$file"
}
