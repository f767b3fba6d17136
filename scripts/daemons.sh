#!/usr/bin/env bash
# Starts, stops and reports both daemons from a build tree, with the configs in
# deploy/config/ (or $ENV_MANAGER_CONFIG / $ORCHESTRATOR_CONFIG). Logs and PID files
# live under $STATE. Usage: daemons.sh start|stop|status [BUILD_DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

cmd="${1:-status}"
build="${2:-$ROOT/build/release}"
em_config="${ENV_MANAGER_CONFIG:-$ROOT/deploy/config/env-manager.yaml}"
orch_config="${ORCHESTRATOR_CONFIG:-$ROOT/deploy/config/orchestrator.yaml}"

http_ok() { curl -fsS "http://$1/health" >/dev/null 2>&1; }

start_one() {
  local name="$1" bin="$2" config="$3" http="$4"
  if pid_alive "$name"; then log "$name already running (pid $(cat "$STATE/pids/$name.pid"))"; return; fi
  [[ -x "$bin" ]] || die "$bin is not built (cmake --preset release && cmake --build --preset release)"
  "$bin" --config "$config" --check-config >/dev/null || die "$name: $config is invalid"
  nohup "$bin" --config "$config" >>"$STATE/logs/$name.log" 2>&1 &
  echo $! >"$STATE/pids/$name.pid"
  wait_for "$name /health on $http" 15 http_ok "$http" || { tail -n 20 "$STATE/logs/$name.log" >&2; return 1; }
  log "$name running (pid $!, log $STATE/logs/$name.log)"
}

case "$cmd" in
  start)
    start_one env-manager "$build/env_manager/env-manager" "$em_config" "${ENV_MANAGER_METRICS_ADDR:-127.0.0.1:50101}"
    start_one orchestrator "$build/orchestrator/orchestrator" "$orch_config" "${ORCHESTRATOR_HTTP_ADDR:-127.0.0.1:9097}"
    ;;
  stop)
    stop_pid orchestrator 10
    stop_pid env-manager 10
    ;;
  status)
    "$build/cli/dspy-agent" status
    ;;
  *) die "usage: daemons.sh start|stop|status [BUILD_DIR]" ;;
esac
