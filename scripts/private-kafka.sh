#!/usr/bin/env bash
# A private single-node Kafka broker (KRaft) for tests that stop or restart Kafka, so the
# test environment's broker and the demo's are never touched. It uses the broker class
# path that `test-env.sh up kafka` resolved ($STATE/kafka/libs) and keeps its data, log
# and PID file under DIR.
# Usage: private-kafka.sh up|start|stop|down DIR PORT CONTROLLER_PORT
#   up     format DIR (first time) and start the broker; returns once it answers
#   start  start it again after a stop (same data)
#   stop   stop it by the PID this script recorded (SIGKILL: a broker that vanishes)
#   down   stop it and delete DIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

cmd="${1:-}" dir="${2:-}" port="${3:-}" cport="${4:-}"
[[ -n "$cmd" && -n "$dir" && -n "$port" && -n "$cport" ]] ||
  die "usage: private-kafka.sh up|start|stop|down DIR PORT CONTROLLER_PORT"
libs="$STATE/kafka/libs"
pidfile="$dir/kafka.pid"
java_opts=(-Xms128m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.yaml")

ready() { kcat -b "127.0.0.1:$port" -L -m 3 2>/dev/null | grep -q 'broker 1 at'; }
alive() { [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  alive && { log "private kafka on $port already runs"; return; }
  require_free_port "a private Kafka broker" "$port"
  require_free_port "a private Kafka controller" "$cport"
  nohup java "${java_opts[@]}" -cp "$libs/*" kafka.Kafka "$dir/server.properties" >>"$dir/kafka.log" 2>&1 &
  echo $! >"$pidfile"
  local deadline=$((SECONDS + 90))
  until ready; do
    if ! alive || ((SECONDS >= deadline)); then
      log "the private Kafka broker on $port did not come up; tail of $dir/kafka.log:"
      tail -n 30 "$dir/kafka.log" >&2
      return 1
    fi
    sleep 0.5
  done
  log "private kafka ready on 127.0.0.1:$port"
}

stop() {
  alive || return 0
  local pid
  pid="$(cat "$pidfile")"
  kill -KILL "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  rm -f "$pidfile"
}

case "$cmd" in
  up)
    [[ -f "$libs/.complete" ]] || die "no Kafka class path in $libs: run scripts/test-env.sh up kafka first"
    mkdir -p "$dir/data"
    kafka_write_config "$dir" 127.0.0.1 "$port" 127.0.0.1 "$port" "$cport" "$dir/data" WARN
    if [[ ! -f "$dir/data/meta.properties" ]]; then
      java "${java_opts[@]}" -cp "$libs/*" kafka.tools.StorageTool format --config "$dir/server.properties" \
        --cluster-id "$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)" \
        --standalone >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; exit 1; }
    fi
    start
    ;;
  start) start ;;
  stop) stop ;;
  down) stop; rm -rf "$dir" ;;
  *) die "unknown command '$cmd' (up|start|stop|down)" ;;
esac
