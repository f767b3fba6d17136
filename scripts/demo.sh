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
# Python stubs of both contracts for the client snippets below.
stubs="$(mktemp -d)"
"$VENV/bin/python" -m grpc_tools.protoc -I"$ROOT/proto" --python_out="$stubs" --grpc_python_out="$stubs" \
  env_manager/v1/env_manager.proto orchestrator/v1/orchestrator.proto
echo
echo "== a task container (env-manager ExecuteTask: allowlisted command, no network, removed after)"
"$VENV/bin/python" - "$stubs" <<'PY'
import sys, grpc
sys.path.insert(0, sys.argv[1])
from env_manager.v1 import env_manager_pb2 as pb, env_manager_pb2_grpc as rpc
with grpc.insecure_channel("127.0.0.1:50100") as ch:
    r = rpc.EnvManagerServiceStub(ch).ExecuteTask(
        pb.ExecuteTaskRequest(task_id="demo-hello", workload_class="cpu_short", payload={"command": "hello"}), timeout=60)
print(f"success={r.success} exit_code={r.result['exit_code']} latency={r.latency_ms:.0f}ms stdout={r.result['stdout_tail'].strip()!r}")
PY
echo
echo "== sample tasks through the orchestrator (durable queue, per-class limits, results streamed)"
"$VENV/bin/python" - "$stubs" <<'PY'
import json, sys, urllib.request, grpc
sys.path.insert(0, sys.argv[1])
from orchestrator.v1 import orchestrator_pb2 as pb, orchestrator_pb2_grpc as rpc
import uuid
run = uuid.uuid4().hex[:6]
tasks = [
    ("cpu_short", {"command": "echo", "args": json.dumps(["plan", "the", "agent", "step"])}),
    ("cpu_short", {"payload_json": json.dumps({"command": "count-words", "env.TEXT": "one two three four five"})}),
    ("cpu_long", {"command": "echo", "args": json.dumps(["a longer step"])}),
    ("gpu", {"command": "hello"}),  # a container through env-manager
    ("cpu_short", {"command": "fail"}),  # fails (after its retry) without touching the others
]
ids = []
with grpc.insecure_channel("127.0.0.1:50052") as ch:
    stub = rpc.OrchestratorServiceStub(ch)
    for i, (cls, payload) in enumerate(tasks):
        req = pb.SubmitTaskRequest(id=f"demo-{run}-{i}", payload=payload)
        setattr(req, "class", cls)
        ids.append(stub.SubmitTask(req, timeout=10).task_id)
    # include_completed: tasks that finished before the stream opened are shown too.
    req = pb.StreamTaskResultsRequest(task_ids=ids, include_completed=True)
    for r in stub.StreamTaskResults(req, timeout=120):
        if r.status in ("completed", "failed"):
            text = (r.result.get("stdout") or r.result.get("stdout_tail") or
                    f"{r.error}: {r.result.get('stderr', '').strip()}").strip()
            print(f"{r.task_id:18} {getattr(r, 'class'):10} {r.status:9} attempts={r.attempts} {r.duration_ms:6.0f} ms  {text}")
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
  tee "$stubs/slurm-task"
slurm_task="$(head -n 1 "$stubs/slurm-task")"
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
echo "The stack and the daemons keep running (logs in $STATE/logs)."
echo "Try: $cli services status | $cli services logs redis --tail 5 | bash scripts/demo.sh stop"
