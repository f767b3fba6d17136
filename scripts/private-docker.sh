#!/usr/bin/env bash
# A private Docker engine for tests that stop or restart Docker: its own socket, data
# root, exec root, PID file, address pool and bridge interface under DIR, and no
# iptables rules, so it never touches the machine's Docker (a system service, the
# demo's, the test environment's) or the containers a person runs there.
# (Not --bridge none: dockerd then deletes the machine's docker0 interface.)
# Usage: private-docker.sh up|down|start|stop DIR [IMAGE...]
#   up     start the engine (if it is not running) and copy IMAGEs into it from the
#          machine's Docker
#   start  start the engine again after a stop (same data root: containers survive,
#          their networks do not; see below)
#   stop   stop the engine by the PID this script recorded (containers stop with it)
#   down   stop it and delete DIR
# The socket is DIR/docker.sock: DOCKER_HOST=unix://DIR/docker.sock.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

cmd="${1:-}"
dir="${2:-}"
[[ -n "$cmd" && -n "$dir" ]] || die "usage: private-docker.sh up|down|start|stop DIR [IMAGE...]"
shift 2
# containerd's socket lives below the exec root; unix socket paths are limited to 107 bytes.
((${#dir} <= 60)) || die "private-docker.sh: DIR must be at most 60 characters (unix socket paths are short)"
docker=/usr/bin/docker
sock="unix://$dir/docker.sock"
pidfile="$dir/dockerd.pid"   # recorded by this script: what stop/down signal

# Its own bridge, named and addressed after DIR so that two private engines differ.
tag=$(printf '%s' "$dir" | sha256sum | cut -c1-8)
bridge="dspy${tag:0:8}"
subnet_octet=$((16#${tag:0:2}))

bridge_up() {
  ip link show "$bridge" >/dev/null 2>&1 && return
  ip link add name "$bridge" type bridge
  ip addr add "172.28.$subnet_octet.1/24" dev "$bridge"
  ip link set "$bridge" up
}
bridge_down() { ip link del "$bridge" 2>/dev/null || true; }

running() { [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
answers() { "$docker" -H "$sock" version >/dev/null 2>&1; }

start_engine() {
  if running; then return; fi
  mkdir -p "$dir/data" "$dir/exec"
  bridge_up
  # Options also stay off the machine's /etc/docker/daemon.json.
  echo '{}' >"$dir/daemon.json"
  nohup /usr/sbin/dockerd --config-file "$dir/daemon.json" --host "$sock" --data-root "$dir/data" \
    --exec-root "$dir/exec" --pidfile "$dir/docker.pid" --bridge "$bridge" --iptables=false --ip-masq=false \
    --ip-forward=false --default-address-pool base=172.29.0.0/16,size=24 \
    >>"$dir/dockerd.log" 2>&1 &
  echo $! >"$pidfile"
  local deadline=$((SECONDS + 60))
  until answers; do
    if ! running; then log "private dockerd exited; tail of $dir/dockerd.log:"; tail -n 30 "$dir/dockerd.log" >&2; exit 1; fi
    if ((SECONDS >= deadline)); then log "private dockerd did not answer in 60 s"; tail -n 30 "$dir/dockerd.log" >&2; exit 1; fi
    sleep 0.1
  done
}

stop_engine() {
  running || { rm -f "$pidfile"; return 0; }
  local pid
  pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case "$cmd" in
  up)
    start_engine
    for image in "$@"; do
      "$docker" -H "$sock" image inspect "$image" >/dev/null 2>&1 && continue
      "$docker" save "$image" | "$docker" -H "$sock" load >/dev/null
    done
    ;;
  start)
    # dockerd 20.10, started again on a data root that knows its default "bridge"
    # network, deletes that stale network and with it the machine's docker0 interface
    # (seen here). Forgetting the engine's network records avoids it: containers are
    # kept, their networks are not (env-manager recreates a container that no longer
    # starts).
    running || rm -f "$dir/data/network/files/local-kv.db"
    start_engine
    ;;
  stop) stop_engine ;;
  down)
    # Its containers and networks go first: a network's bridge interface would
    # otherwise outlive the engine.
    if running && answers; then
      ids=$("$docker" -H "$sock" ps -aq)
      [[ -z "$ids" ]] || "$docker" -H "$sock" rm -f $ids >/dev/null 2>&1 || true
      "$docker" -H "$sock" network prune -f >/dev/null 2>&1 || true
    fi
    stop_engine
    bridge_down
    # A cleanly stopped engine has unmounted everything below its data root.
    if ! grep -q " $dir/" /proc/mounts; then rm -rf "$dir"; else log "left $dir: something below it is still mounted"; fi
    ;;
  *) die "usage: private-docker.sh up|down|start|stop DIR [IMAGE...]" ;;
esac
