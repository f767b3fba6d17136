#!/usr/bin/env bash
# Upgrades an installed dspy-agent to this checkout's build: installs it as a new release
# beside the current one (install.sh), switches to it, restarts both daemons (systemd's
# dspy-agent.target, or `dspy-agent restart` for daemons started by `dspy-agent start`)
# and waits until both are healthy. If they are not, it switches back to the previous
# release, restarts that one and exits 1: a bad release never stays in place.
# The services keep running throughout (only the daemons restart; env-manager adopts its
# containers).
# Usage: upgrade.sh [--prefix DIR] [--root DIR] [--build DIR] [--release NAME] [--timeout S]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

prefix=/usr/local root="" build="$ROOT/build/release" release="" timeout=60
while (($#)); do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --root) root="${2%/}"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --release) release="$2"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    *) die "unknown option '$1' (--prefix DIR, --root DIR, --build DIR, --release NAME, --timeout S)" ;;
  esac
done
lib="$root$prefix/lib/dspy-agent"
previous="$(readlink "$lib/current" 2>/dev/null)" || die "nothing installed under $root$prefix (run scripts/install.sh)"

restart() {  # the daemons of the release `current` points at
  if [[ -z "$root" && -d /run/systemd/system && -f /etc/systemd/system/dspy-agent.target ]]; then
    # The units by name: systemctl then waits for each one's own restart job.
    systemctl restart dspy-env-manager.service dspy-orchestrator.service dspy-agent.target || return 1
    "$root$prefix/bin/dspy-agent" start --no-services --timeout "$timeout"  # waits for both /health
  else
    "$root$prefix/bin/dspy-agent" restart --keep-services --no-services --timeout "$timeout"
  fi
}

args=(--prefix "$prefix" --build "$build" --no-enable)
[[ -n "$root" ]] && args+=(--root "$root")
[[ -n "$release" ]] && args+=(--release "$release")
bash "$here/install.sh" "${args[@]}"
now="$(readlink "$lib/current")"
if [[ "$now" == "$previous" ]]; then
  log "release ${now#releases/} is already the current one; restarting it"
fi
log "switched ${previous#releases/} -> ${now#releases/}; restarting the daemons"
if restart; then
  log "upgraded to ${now#releases/}; the previous release stays in $lib/$previous"
  exit 0
fi
log "ERROR: ${now#releases/} did not become healthy within $timeout s; rolling back to ${previous#releases/}"
ln -sfn "$previous" "$lib/current"
if restart; then
  log "rolled back: ${previous#releases/} runs again"
else
  log "ERROR: the rollback to ${previous#releases/} did not become healthy either; see dspy-agent logs"
fi
exit 1
