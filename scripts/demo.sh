#!/usr/bin/env bash
# The main job. On a fresh Debian 12 machine (root) it installs what it needs, builds,
# starts dockerd and both daemons, and shows their status. The daemons keep running
# afterwards; `scripts/demo.sh stop` stops them and the environment it started.
# Usage: demo.sh [stop]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

if [[ "${1:-}" == stop ]]; then
  bash "$here/daemons.sh" stop
  bash "$here/test-env.sh" down docker
  exit 0
fi

bash "$here/install-deps.sh"
bash "$here/test-env.sh" up docker
bash "$here/build.sh" release
bash "$here/build-images.sh"
bash "$here/daemons.sh" start
echo
echo "== dspy-agent status"
"$ROOT/build/release/cli/dspy-agent" status
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
echo "Daemons keep running (logs in $STATE/logs). Stop them with: bash scripts/demo.sh stop"
