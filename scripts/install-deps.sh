#!/usr/bin/env bash
# Installs everything the build, the tests and the demo need on Debian 12.
# Idempotent: packages already present are skipped by apt; the Python venv is reused.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

DEB_PACKAGES=(
  # build
  build-essential cmake ninja-build ccache pkg-config git
  # libraries
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libcpp-httplib-dev nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev librdkafka-dev
  prometheus-cpp-dev catch2 libcli11-dev libcurl4-openssl-dev libsqlite3-dev libsystemd-dev
  libjemalloc-dev
  # real components for integration tests and the demo
  docker.io docker-registry docker-compose busybox-static redis-server redis-tools
  slurm-wlm munge kcat openjdk-17-jre-headless maven
  # tools used by scripts and benchmarks
  curl jq procps psmisc iproute2 hyperfine time
  # systemd-analyze (checks of the units in deploy/systemd/), Prometheus and promtool
  # (the observability kit's tests)
  systemd prometheus debootstrap
  # Debian's own python3 with venv: the Python package is tested installing into it
  python3 python3-venv
  # the web page's browser tests (Selenium drives headless chromium)
  chromium chromium-driver
  # libFuzzer targets (scripts/fuzz.sh): clang with its sanitizer and fuzzer runtimes
  clang libclang-rt-14-dev
)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Services must not be started by the package scripts: the test environment starts
  # them itself, with its own config, and CI must not find stray daemons.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
else
  log "Debian packages already installed"
fi

# Python: one venv under the state folder, used explicitly by every script.
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating Python venv at $VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
reqs="$ROOT/python/requirements-test.txt"
if ! cmp -s "$reqs" "$VENV/.requirements-installed"; then
  log "installing Python packages from ${reqs#$ROOT/}"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$reqs"
  cp "$reqs" "$VENV/.requirements-installed"
fi
# The client package (python/): built from this checkout every time (a few seconds), so
# its stubs always match proto/.
"$VENV/bin/pip" install -q --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall \
  "$ROOT/python" >"$STATE/logs/pip-package.log" 2>&1 || { tail -n 20 "$STATE/logs/pip-package.log" >&2; die "pip install ./python failed"; }
log "dependencies ready"
