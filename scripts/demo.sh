#!/usr/bin/env bash
# The main job. On a fresh Debian 12 machine (root) it installs what it needs, builds,
# starts dockerd and both daemons, brings up the nine-service stack from local images
# through env-manager (dependency order, health checks), runs a task container, runs
# sample tasks through the orchestrator and a Slurm job on the local single-node
# cluster, and shows the status. Everything keeps running afterwards; `scripts/demo.sh stop` stops the
# stack, the daemons and the environment it started.
# Usage: demo.sh [stop]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

# The demo's env-manager manages the local twin of the default stack.
export ENV_MANAGER_CONFIG="${ENV_MANAGER_CONFIG:-$ROOT/deploy/config/env-manager.local.yaml}"
export ORCHESTRATOR_CONFIG="${ORCHESTRATOR_CONFIG:-$ROOT/deploy/config/orchestrator.local.yaml}"
export ENV_QUEUE_DIR="${ENV_QUEUE_DIR:-$STATE/orchestrator}"
# gpu_slurm tasks render the templates of this checkout (installed: /etc/dspy-agent/slurm).
export SLURM_TEMPLATES_DIR="${SLURM_TEMPLATES_DIR:-$ROOT/deploy/slurm}"
cli="$ROOT/build/release/cli/dspy-agent"

if [[ "${1:-}" == stop ]]; then
  [[ -x "$cli" ]] && "$cli" services stop --timeout 2 || true
  bash "$here/daemons.sh" stop
  bash "$here/test-env.sh" down docker slurm
  exit 0
fi

bash "$here/install-deps.sh"
bash "$here/test-env.sh" up docker slurm
bash "$here/build.sh" release
bash "$here/build-images.sh"
bash "$here/daemons.sh" start
echo
echo "== dspy-agent services start (the nine services, each as soon as its dependencies are healthy)"
"$cli" services start
echo
echo "== dspy-agent services status"
"$cli" services status
work="$(mktemp -d)"
echo
echo "== a task container (env-manager ExecuteTask: allowlisted command, no network, removed after)"
"$VENV/bin/python" - <<'PY'
import asyncio
from dspy_agent_infra import EnvManagerClient

async def main():
    async with EnvManagerClient("127.0.0.1:50100") as em:
        r = await em.execute_task("demo-hello", "cpu_short", {"command": "hello"}, timeout_seconds=60)
    print(f"success={r['success']} exit_code={r['result']['exit_code']} latency={r['latency_ms']:.0f}ms "
          f"stdout={r['result']['stdout_tail'].strip()!r}")

asyncio.run(main())
PY
echo
echo "== sample tasks through the orchestrator with the Python package (durable queue, per-class limits, results streamed)"
"$VENV/bin/python" - <<'PY'
import asyncio, json, urllib.request
from dspy_agent_infra import AgentInfra, TaskSpec

tasks = [
    TaskSpec("cpu_short", {"command": "echo", "args": ["plan", "the", "agent", "step"]}),  # a list goes as JSON
    TaskSpec("cpu_short", {"command": "count-words", "env.TEXT": "one two three four five"}),
    TaskSpec("cpu_long", {"command": "echo", "args": ["a longer step"]}),
    TaskSpec("gpu", {"command": "hello"}),  # a container through env-manager
    TaskSpec("cpu_short", {"command": "fail"}),  # fails (after its retry) without touching the others
]

async def main():
    async with AgentInfra.start("127.0.0.1:50052", "127.0.0.1:50100") as infra:
        handles = await infra.orchestrator.submit_many(tasks)
        async for h in infra.orchestrator.as_completed(handles, timeout=120):
            r = await h.result(raise_on_failure=False)
            text = (r.result.get("stdout") or r.result.get("stdout_tail") or
                    f"{r.error}: {r.result.get('stderr', '').strip()}").strip()
            print(f"{r.task_id[:18]:18} {r.task_class:10} {r.status:9} attempts={r.attempts} "
                  f"{r.duration_ms:6.0f} ms  {text}")

asyncio.run(main())
status = json.load(urllib.request.urlopen("http://127.0.0.1:9097/queue/status", timeout=5))
print("queue:", {k: status[k] for k in ("pending", "done", "submitted", "completed")})
PY
echo
echo "== a sample workflow: deploy/workflows/diamond.yaml (two branches in parallel, outputs passed on)"
"$cli" workflows create "$ROOT/deploy/workflows/diamond.yaml"
"$cli" workflows run diamond --input who=demo --watch
echo
echo "== a Slurm job: a gpu_slurm task rendered from deploy/slurm/command.sbatch, submitted with sbatch, tracked with squeue"
"$cli" tasks submit gpu_slurm 'command=echo trained one step on $(hostname -s)' job_name=dspy-demo --wait |
  tee "$work/slurm-task"
slurm_task="$(head -n 1 "$work/slurm-task")"
"$cli" tasks show "$slurm_task"
curl -fsS "http://127.0.0.1:9097/slurm/status/$slurm_task"; echo
echo
echo "== events: every change above is an event in the outbox, published to the stack's Kafka"
"$cli" events --since 10m -t 'workflow_*' | tail -n 8
# The broker (a JVM in the kafka container) may still be catching up: wait until the
# orchestrator reports its outbox empty, then read the topic back with kcat.
for _ in $(seq 1 120); do
  curl -fsS http://127.0.0.1:9097/health 2>/dev/null | grep -q '"outbox":"0 event(s) pending"' && break
  sleep 0.5
done
curl -fsS http://127.0.0.1:9097/health | "$VENV/bin/python" -c \
  'import json,sys; c=json.load(sys.stdin)["components"]; print("orchestrator: kafka", c["kafka"], "|", c["outbox"])'
echo "last 3 messages of topic agent.events on 127.0.0.1:9092:"
kcat -b 127.0.0.1:9092 -C -t agent.events -o -3 -e -q -f '%k  %s\n' | cut -c1-200
echo
echo "== dspy-agent tasks list (the store keeps every task; --json for scripts)"
"$cli" tasks list --limit 5
echo
echo "== dspy-agent status"
"$cli" status
echo
echo "== gRPC health (grpc.health.v1) and the orchestrator's Health RPC"
"$VENV/bin/python" - <<'PY'
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
for name, addr in (("env-manager", "127.0.0.1:50100"), ("orchestrator", "127.0.0.1:50052")):
    with grpc.insecure_channel(addr) as ch:
        r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        print(f"{name:13} {addr:16} {health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)}")
PY
echo
echo "== the web page: services, tasks, workflow runs, the start-up timeline, events (live)"
curl -fsS -o /dev/null -w "GET /ui/ -> %{http_code} (%{size_download} bytes)\n" "http://127.0.0.1:9097/ui/"
echo "open http://127.0.0.1:9097/ui/ in a browser on this machine (or through ssh -L 9097:127.0.0.1:9097)"
echo
echo "The stack and the daemons keep running (logs in $STATE/logs)."
echo "Try: $cli services status | $cli services logs redis --tail 5 | bash scripts/demo.sh stop"
