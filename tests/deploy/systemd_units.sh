#!/usr/bin/env bash
# The systemd units of deploy/systemd/ pass `systemd-analyze verify` (with ExecStart
# pointing at the built daemons) and each service's `systemd-analyze security` exposure
# is at most 4.0. Usage: systemd_units.sh ENV_MANAGER_BINARY ORCHESTRATOR_BINARY
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../deploy/systemd" && pwd)"
em="$1" orch="$2"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
for f in "$src"/*.service "$src"/*.target; do
  sed -e "s|/usr/local/bin/env-manager|$em|" -e "s|/usr/local/bin/orchestrator|$orch|" "$f" >"$dir/$(basename "$f")"
done
cd "$dir"
out="$(systemd-analyze verify ./dspy-agent.target ./dspy-env-manager.service ./dspy-orchestrator.service 2>&1)" || {
  echo "$out"; exit 1; }
# verify prints what it finds questionable even when it exits 0: nothing may be printed.
[[ -z "$out" ]] || { echo "systemd-analyze verify complained:"; echo "$out"; exit 1; }
for unit in dspy-env-manager.service dspy-orchestrator.service; do
  line="$(systemd-analyze security --offline=true --threshold=40 "./$unit" 2>&1 | grep 'Overall exposure level')" || {
    systemd-analyze security --offline=true "./$unit" | tail -n 30; echo "$unit: exposure above 4.0"; exit 1; }
  echo "$line"
done
