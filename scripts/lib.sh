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

# kafka_write_config DIR PORT CONTROLLER_PORT DATA_DIR LOG_LEVEL: a single-node KRaft
# broker's server.properties and log4j2.yaml in DIR (test-env.sh's broker and
# private-kafka.sh's).
kafka_write_config() {
  local dir="$1" port="$2" cport="$3" data="$4" level="$5"
  cat >"$dir/server.properties" <<CFG
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
CFG
  cat >"$dir/log4j2.yaml" <<CFG
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: $level
      AppenderRef:
        - ref: STDOUT
CFG
}
