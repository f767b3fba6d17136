#!/usr/bin/env bash
# The test environment's Docker engine is real: a container from a locally built image
# runs and serves a published port on 127.0.0.1.
set -euo pipefail
docker=/usr/bin/docker
image=dspy-test/busybox:latest
"$docker" image inspect "$image" >/dev/null || { echo "image $image missing: run scripts/build-images.sh" >&2; exit 1; }
name="dspy-smoke-$$-$RANDOM"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
token="smoke-$RANDOM$RANDOM"
cleanup() { "$docker" rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT
"$docker" run -d --name "$name" -p "127.0.0.1:$port:8080" "$image" \
  sh -c "mkdir -p /www && echo $token > /www/index.html && httpd -f -p 8080 -h /www" >/dev/null
deadline=$((SECONDS + 30))
until body=$(curl -fsS "http://127.0.0.1:$port/index.html" 2>/dev/null); do
  ((SECONDS < deadline)) || { echo "container did not serve port $port in 30 s" >&2; "$docker" logs "$name" >&2; exit 1; }
  sleep 0.1
done
[[ "$body" == "$token" ]] || { echo "unexpected body: $body" >&2; exit 1; }
echo "container $name served its token on 127.0.0.1:$port"
