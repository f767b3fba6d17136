#!/usr/bin/env bash
# A private single-node Slurm cluster (its own slurmctld and slurmd, its own slurm.conf,
# ports and state under DIR) for tests that stop or restart slurmctld, so the test
# environment's cluster and the demo's jobs are never touched. It shares the machine's
# munged (started by `test-env.sh up slurm`). Point Slurm's commands at it with
# SLURM_CONF=DIR/slurm.conf.
# Usage: private-slurm.sh up|start-ctld|stop-ctld|down DIR CTLD_PORT SLURMD_PORT
#   up         write DIR/slurm.conf, start slurmctld and slurmd; returns once the node is idle
#   stop-ctld  stop slurmctld by the PID this script recorded (SIGTERM, so it saves its state
#              as an operator's restart does; SIGKILL after 15 s)
#   start-ctld start slurmctld again (same state: it recovers its jobs)
#   down       stop both (by their recorded PIDs) and delete DIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

cmd="${1:-}" dir="${2:-}" cport="${3:-}" dport="${4:-}"
[[ -n "$cmd" && -n "$dir" && -n "$cport" && -n "$dport" ]] ||
  die "usage: private-slurm.sh up|start-ctld|stop-ctld|down DIR CTLD_PORT SLURMD_PORT"
export SLURM_CONF="$dir/slurm.conf"

alive() { [[ -f "$dir/$1.pid" ]] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }
ready() { sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; }

write_conf() {
  slurm_write_config "$SLURM_CONF" "dspy-agent private test cluster (written by scripts/private-slurm.sh)" \
    "dspypriv$cport" "$dir" "$dir" "$cport" "$dport"
}

start_daemon() {  # name argv...
  local name="$1"
  shift
  alive "$name" && return 0
  nohup "$@" >>"$dir/$name.out" 2>&1 &
  echo $! >"$dir/$name.pid"
}

stop_daemon() {
  alive "$1" || { rm -f "$dir/$1.pid"; return 0; }
  local pid
  pid="$(cat "$dir/$1.pid")"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/$1.pid"
}

wait_ready() {
  local deadline=$((SECONDS + 60))
  until ready; do
    if ((SECONDS >= deadline)); then
      log "the private Slurm cluster (port $cport) did not come up; tail of $dir/slurmctld.log:"
      tail -n 20 "$dir/slurmctld.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

case "$cmd" in
  up)
    munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 || die "munged does not answer: run scripts/test-env.sh up slurm first"
    require_free_port "a private slurmctld" "$cport"
    require_free_port "a private slurmd" "$dport"
    write_conf
    start_daemon slurmctld /usr/sbin/slurmctld -D -i -f "$SLURM_CONF"
    start_daemon slurmd /usr/sbin/slurmd -D -f "$SLURM_CONF"
    wait_ready
    log "private slurm ready (slurmctld on $cport, conf $SLURM_CONF)"
    ;;
  stop-ctld) stop_daemon slurmctld ;;
  start-ctld)
    start_daemon slurmctld /usr/sbin/slurmctld -D -f "$SLURM_CONF"
    wait_ready
    ;;
  down)
    stop_daemon slurmd
    stop_daemon slurmctld
    rm -rf "$dir"
    ;;
  *) die "unknown command '$cmd' (up|start-ctld|stop-ctld|down)" ;;
esac
