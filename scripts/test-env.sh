#!/usr/bin/env bash
# Starts, stops and reports the real components the integration tests and the demo use:
# dockerd, a local image registry (127.0.0.1:5000), munge + slurmctld + slurmd (single
# node) and an Apache Kafka broker in KRaft mode (127.0.0.1:39092, controller 39093:
# ports the demo stack never publishes). Every component logs to $STATE/logs/; when one
# does not come up, the tail of its log is printed.
# Usage: test-env.sh up|down|status [docker|registry|slurm|kafka ...]
# Idempotent: a component that already answers is left alone. Logs and PID files live
# under $STATE (.state/ by default); `down` stops only the PIDs recorded there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

SLURM_DIR="$STATE/slurm"
REGISTRY_DIR="$STATE/registry"
DOCKER_BIN=/usr/bin/docker  # Debian's client, matching the Debian engine's API version

# ---------------------------------------------------------------- docker
docker_ready() { [[ -S /var/run/docker.sock ]] && "$DOCKER_BIN" version >/dev/null 2>&1; }
docker_up() {
  if docker_ready; then log "dockerd already answers"; return; fi
  log "starting dockerd"
  nohup /usr/sbin/dockerd --host unix:///var/run/docker.sock \
    >"$STATE/logs/dockerd.log" 2>&1 &
  echo $! >"$STATE/pids/dockerd.pid"
  wait_for "dockerd" 60 docker_ready || { tail -n 30 "$STATE/logs/dockerd.log" >&2; return 1; }
  log "dockerd ready ($("$DOCKER_BIN" version --format '{{.Server.Version}} API {{.Server.APIVersion}}'))"
}
docker_down() {
  # dockerd stops its managed containerd and, by default, leaves containers stopped.
  stop_pid dockerd 30
}

# ---------------------------------------------------------------- registry
registry_ready() { curl -fsS "http://$TEST_REGISTRY_ADDR/v2/" >/dev/null 2>&1; }
registry_up() {
  if registry_ready; then log "registry already answers"; return; fi
  require_free_port "docker-registry" "${TEST_REGISTRY_ADDR##*:}"
  mkdir -p "$REGISTRY_DIR/data"
  cat >"$REGISTRY_DIR/config.yml" <<CFG
version: 0.1
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
http:
  addr: $TEST_REGISTRY_ADDR
CFG
  log "starting docker-registry on $TEST_REGISTRY_ADDR"
  nohup /usr/bin/docker-registry serve "$REGISTRY_DIR/config.yml" \
    >"$STATE/logs/registry.log" 2>&1 &
  echo $! >"$STATE/pids/registry.pid"
  wait_for "registry" 30 registry_ready || { tail -n 30 "$STATE/logs/registry.log" >&2; return 1; }
}
registry_down() { stop_pid registry; }

# ---------------------------------------------------------------- slurm
slurm_ready() { sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; }
munge_ready() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }
slurm_write_conf() {
  # Slurm's commands read /etc/slurm/slurm.conf; we own it only if it carries our marker.
  if [[ -f /etc/slurm/slurm.conf ]] && ! grep -q '^# dspy-agent test environment' /etc/slurm/slurm.conf; then
    die "/etc/slurm/slurm.conf exists and is not ours; refusing to overwrite it"
  fi
  slurm_write_config /etc/slurm/slurm.conf "dspy-agent test environment (written by scripts/test-env.sh)" \
    dspy "$SLURM_DIR" "$STATE/logs"
}
slurm_up() {
  if slurm_ready; then log "slurm already answers"; return; fi
  if ! munge_ready; then
    log "starting munged"
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    [[ -f /etc/munge/munge.key ]] || { mungekey --create >/dev/null 2>&1 || /usr/sbin/mungekey -c; chown munge:munge /etc/munge/munge.key; }
    # munged forks; --foreground would tie it to this shell. It writes its own PID file.
    runuser -u munge -- /usr/sbin/munged --force
    wait_for "munged" 15 munge_ready || { tail -n 30 /var/log/munge/munged.log >&2 2>/dev/null; return 1; }
    cp /run/munge/munged.pid "$STATE/pids/munged.pid"
  fi
  slurm_write_conf
  if ! pid_alive slurmctld; then
    log "starting slurmctld"
    nohup /usr/sbin/slurmctld -D -i >>"$STATE/logs/slurmctld.out" 2>&1 &
    echo $! >"$STATE/pids/slurmctld.pid"
  fi
  if ! pid_alive slurmd; then
    log "starting slurmd"
    nohup /usr/sbin/slurmd -D >>"$STATE/logs/slurmd.out" 2>&1 &
    echo $! >"$STATE/pids/slurmd.pid"
  fi
  if ! wait_for "slurm node idle" 60 slurm_ready; then
    # A node left DOWN by an earlier run comes back with an explicit resume.
    scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
    wait_for "slurm node idle" 30 slurm_ready || {
      for f in slurmctld.log slurmctld.out slurmd.log slurmd.out; do
        [[ -s "$STATE/logs/$f" ]] && { log "tail of $STATE/logs/$f:"; tail -n 20 "$STATE/logs/$f" >&2; }
      done
      return 1
    }
  fi
  log "slurm ready ($(sinfo -h -o '%N %T %c CPUs'))"
}
slurm_down() {
  stop_pid slurmd
  stop_pid slurmctld
  stop_pid munged
}

# ---------------------------------------------------------------- kafka
kafka_ready() {
  kcat -b "$TEST_KAFKA_BROKERS" -L -m 3 2>/dev/null | grep -q 'broker 1 at'
}
# Ends a wait early when the broker process is gone (its log then says why).
kafka_ready_or_dead() { kafka_ready || ! pid_alive kafka; }
kafka_up() {
  if kafka_ready; then log "kafka already answers"; return; fi
  require_free_port "the Kafka broker" "$TEST_KAFKA_PORT"
  require_free_port "the Kafka controller" "$TEST_KAFKA_CONTROLLER_PORT"
  kafka_fetch
  mkdir -p "$KAFKA_DIR/data"
  kafka_write_config "$KAFKA_DIR" 127.0.0.1 "$TEST_KAFKA_PORT" 127.0.0.1 "$TEST_KAFKA_PORT" \
    "$TEST_KAFKA_CONTROLLER_PORT" "$KAFKA_DIR/data" INFO
  # The storage records the controller's endpoint: a broker formatted for other ports
  # cannot start, so it is formatted again (the test broker keeps no data worth keeping).
  local ports="$TEST_KAFKA_PORT $TEST_KAFKA_CONTROLLER_PORT"
  if [[ -f "$KAFKA_DIR/data/meta.properties" && "$(cat "$KAFKA_DIR/data/.ports" 2>/dev/null)" != "$ports" ]]; then
    log "Kafka storage was formatted for other ports; formatting it again"
    rm -rf "$KAFKA_DIR/data"
    mkdir -p "$KAFKA_DIR/data"
  fi
  local java_opts=(-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
                   -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.yaml")
  if [[ ! -f "$KAFKA_DIR/data/meta.properties" ]]; then
    log "formatting Kafka storage"
    java "${java_opts[@]}" -cp "$KAFKA_DIR/libs/*" kafka.tools.StorageTool format \
      --config "$KAFKA_DIR/server.properties" \
      --cluster-id "$(java -cp "$KAFKA_DIR/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)" \
      --standalone >"$STATE/logs/kafka-format.log" 2>&1 \
      || { cat "$STATE/logs/kafka-format.log" >&2; return 1; }
    echo "$ports" >"$KAFKA_DIR/data/.ports"
  fi
  log "starting Kafka broker on $TEST_KAFKA_BROKERS"
  nohup java "${java_opts[@]}" -cp "$KAFKA_DIR/libs/*" kafka.Kafka "$KAFKA_DIR/server.properties" \
    >"$STATE/logs/kafka.log" 2>&1 &
  echo $! >"$STATE/pids/kafka.pid"
  wait_for "kafka broker" 90 kafka_ready_or_dead || true
  if ! kafka_ready; then
    pid_alive kafka && log "the Kafka broker did not answer in 90 s" || log "the Kafka broker exited"
    log "tail of $STATE/logs/kafka.log:"
    tail -n 40 "$STATE/logs/kafka.log" >&2
    return 1
  fi
  log "kafka ready"
}
kafka_down() { stop_pid kafka 30; }

# ---------------------------------------------------------------- main
status_line() {
  local name="$1" check="$2"
  if "$check"; then printf '%-9s up\n' "$name"; else printf '%-9s down\n' "$name"; fi
}

cmd="${1:-status}"; shift || true
components=("$@")
((${#components[@]})) || components=(docker registry slurm kafka)
for c in "${components[@]}"; do
  case "$c" in docker|registry|slurm|kafka) ;; *) die "unknown component '$c' (docker|registry|slurm|kafka)";; esac
done

case "$cmd" in
  up)
    # Independent components start side by side; each waits for its own readiness.
    pids=()
    for c in "${components[@]}"; do "${c}_up" & pids+=($!); done
    rc=0
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    ((rc == 0)) || die "some components did not start (logs: $STATE/logs)"
    ;;
  down)
    for ((i=${#components[@]}-1; i>=0; i--)); do "${components[i]}_down"; done
    ;;
  status)
    rc=0
    for c in "${components[@]}"; do
      status_line "$c" "${c}_ready" || true
      "${c}_ready" || rc=1
    done
    exit $rc
    ;;
  *) die "usage: test-env.sh up|down|status [docker|registry|slurm|kafka ...]" ;;
esac
