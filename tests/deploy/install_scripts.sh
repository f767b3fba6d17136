#!/usr/bin/env bash
# install.sh into a staging root: the release layout, links, units with the prefix,
# default config, Slurm templates, docs; a second run changes nothing; an operator's
# config survives a reinstall; uninstall keeps config and data, --purge removes them.
# Usage: install_scripts.sh BUILD_DIR
set -euo pipefail
scripts="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../scripts" && pwd)"
build="$1"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

bash "$scripts/install.sh" --root "$root" --prefix /opt/dspy --build "$build" 2>"$root.log1" || { cat "$root.log1"; exit 1; }
for b in env-manager orchestrator dspy-agent; do
  [[ -L "$root/opt/dspy/bin/$b" ]] || fail "no link bin/$b"
  [[ -x "$(readlink -f "$root/opt/dspy/bin/$b")" ]] || fail "bin/$b does not lead to an executable"
done
"$root/opt/dspy/bin/orchestrator" --version | grep -q '^orchestrator ' || fail "the installed orchestrator does not run"
[[ "$(readlink "$root/opt/dspy/lib/dspy-agent/current")" == releases/* ]] || fail "no current release link"
grep -qx 'ExecStart=/opt/dspy/bin/orchestrator --config /etc/dspy-agent/orchestrator.yaml' \
  "$root/etc/systemd/system/dspy-orchestrator.service" || fail "the orchestrator unit does not use the prefix"
grep -q '^ExecStart=/opt/dspy/bin/env-manager ' "$root/etc/systemd/system/dspy-env-manager.service" || fail "env-manager unit"
[[ -f "$root/etc/systemd/system/dspy-agent.target" ]] || fail "no target"
for f in env-manager.yaml orchestrator.yaml services.yaml slurm/command.sbatch slurm/ddp.sbatch; do
  [[ -f "$root/etc/dspy-agent/$f" ]] || fail "no /etc/dspy-agent/$f"
done
[[ -f "$root/opt/dspy/share/doc/dspy-agent/operator-guide.md" ]] || fail "no docs"
[[ -d "$root/var/lib/dspy-agent/orchestrator" ]] || fail "no state directory"

# Idempotent: nothing changes, nothing is reported as installed.
listing() { (cd "$root" && find . -printf '%p %l %s %T@\n' | sort); }
before="$(listing)"
bash "$scripts/install.sh" --root "$root" --prefix /opt/dspy --build "$build" 2>"$root.log2"
! grep -Eq 'installed /|linked /' "$root.log2" || { cat "$root.log2"; fail "a second run changed files"; }
[[ "$(listing)" == "$before" ]] || fail "a second run changed the tree"

# An operator's config is kept.
echo "# edited by the operator" >>"$root/etc/dspy-agent/orchestrator.yaml"
bash "$scripts/install.sh" --root "$root" --prefix /opt/dspy --build "$build" 2>"$root.log3"
grep -q 'edited by the operator' "$root/etc/dspy-agent/orchestrator.yaml" || fail "the operator's config was overwritten"
grep -q 'kept .*orchestrator.yaml' "$root.log3" || fail "the kept config is not reported"

# Uninstall keeps config and data; --purge removes them.
touch "$root/var/lib/dspy-agent/orchestrator/orchestrator.db"
bash "$scripts/uninstall.sh" --root "$root" --prefix /opt/dspy 2>/dev/null
[[ ! -e "$root/opt/dspy/bin/orchestrator" && ! -e "$root/opt/dspy/lib/dspy-agent" ]] || fail "binaries left"
[[ ! -e "$root/etc/systemd/system/dspy-orchestrator.service" ]] || fail "unit left"
[[ -f "$root/etc/dspy-agent/orchestrator.yaml" && -f "$root/var/lib/dspy-agent/orchestrator/orchestrator.db" ]] ||
  fail "uninstall removed config or data"
bash "$scripts/uninstall.sh" --root "$root" --prefix /opt/dspy --purge 2>/dev/null
[[ ! -e "$root/etc/dspy-agent" && ! -e "$root/var/lib/dspy-agent" ]] || fail "--purge left config or data"
rm -f "$root.log1" "$root.log2" "$root.log3"
echo "install.sh and uninstall.sh behave"
