#!/usr/bin/env bash
# Upgrades an installed dspy-agent to this checkout's build: installs it as a new release
# beside the current one (install.sh), switches to it, restarts both daemons (systemd's
# dspy-agent.target, or `dspy-agent restart` for daemons started by `dspy-agent start`)
# and waits until both are healthy. If they are not, it switches back to the previous
# release, restarts that one and exits 1: a bad release never stays in place. If the
# new release migrated the orchestrator's store to a newer schema (it keeps the store as
# it was in orchestrator.db.before-schema-<N>), the rollback puts that copy back with
# `dspy-agent restore`, since an older orchestrator refuses a newer store; the migrated
# database is kept beside it (orchestrator.db.before-restore-<time>).
# The services keep running throughout (only the daemons restart; env-manager adopts its
# containers).
# Usage: upgrade.sh [--prefix DIR] [--root DIR] [--build DIR] [--release NAME] [--timeout S]
#                   [--store DIR]
# --store: the orchestrator's store directory, for the rollback (default: what the
# installed CLI's `config show` resolves for store.dir, with the systemd unit's
# environment when the daemons run under systemd).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

prefix=/usr/local root="" build="$ROOT/build/release" release="" timeout=60 store=""
while (($#)); do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --root) root="${2%/}"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --release) release="$2"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    --store) store="${2%/}"; shift 2 ;;
    *) die "unknown option '$1' (--prefix DIR, --root DIR, --build DIR, --release NAME, --timeout S, --store DIR)" ;;
  esac
done
lib="$root$prefix/lib/dspy-agent"
previous="$(readlink "$lib/current" 2>/dev/null)" || die "nothing installed under $root$prefix (run scripts/install.sh)"

under_systemd() { [[ -z "$root" && -d /run/systemd/system && -f /etc/systemd/system/dspy-agent.target ]]; }

restart() {  # the daemons of the release `current` points at
  if under_systemd; then
    # The units by name: systemctl then waits for each one's own restart job.
    systemctl restart dspy-env-manager.service dspy-orchestrator.service dspy-agent.target || return 1
    "$root$prefix/bin/dspy-agent" start --no-services --timeout "$timeout"  # waits for both /health
  else
    "$root$prefix/bin/dspy-agent" restart --keep-services --no-services --timeout "$timeout"
  fi
}

# The orchestrator's store directory as the daemon resolves it: the config file, then
# the environment (under systemd, the unit's), else the default.
store_dir() {
  if [[ -n "$store" ]]; then
    printf '%s\n' "$store"
    return
  fi
  local cli="$root$prefix/bin/dspy-agent" shown
  if under_systemd; then
    local unit_env
    unit_env="$(systemctl show -p Environment --value dspy-orchestrator.service 2>/dev/null)" || unit_env=""
    # shellcheck disable=SC2086  # the unit's assignments, one word each
    shown="$(env -u ENV_QUEUE_DIR $unit_env "$cli" config show --orchestrator /etc/dspy-agent/orchestrator.yaml)"
  else
    shown="$("$cli" config show)"
  fi || return 1
  sed -n 's/^store\.dir  *"\(.*\)"  *(.*$/\1/p' <<<"$shown" | grep .
}

# After a failed upgrade, with `current` back on the previous release: if the new one
# migrated the store during this upgrade (a before-schema copy newer than $marker), the
# orchestrator is stopped and that copy is restored, or the previous release would
# refuse the store. Returns non-zero when a copy exists but could not be put back.
restore_premigration_store() {
  local dir copy version
  if ! dir="$(store_dir)"; then
    log "WARNING: could not tell where the orchestrator's store is (give --store DIR); if ${now#releases/} migrated it, run dspy-agent restore <store>/orchestrator.db.before-schema-<N> yourself"
    return 0
  fi
  copy="$(find "$dir" -maxdepth 1 -name 'orchestrator.db.before-schema-*' -newer "$marker" 2>/dev/null | sort -V | head -n 1)"
  [[ -z "$copy" ]] && return 0
  version="${copy##*-}"
  log "${now#releases/} migrated the store in $dir from schema $version; putting the copy it kept back"
  if under_systemd; then
    systemctl stop dspy-orchestrator.service || true
  else
    "$root$prefix/bin/dspy-agent" stop --keep-services --force --timeout "$timeout" >/dev/null || true
  fi
  if "$root$prefix/bin/dspy-agent" restore "$copy" --store "$dir" >&2; then
    log "restored the store as it was before the upgrade (schema $version); what ${now#releases/} wrote since is in the database kept beside it (before-restore)"
    return 0
  fi
  log "ERROR: could not restore $copy into $dir"
  return 1
}

args=(--prefix "$prefix" --build "$build" --no-enable)
[[ -n "$root" ]] && args+=(--root "$root")
[[ -n "$release" ]] && args+=(--release "$release")
bash "$here/install.sh" "${args[@]}"
now="$(readlink "$lib/current")"
if [[ "$now" == "$previous" ]]; then
  log "release ${now#releases/} is already the current one; restarting it"
fi
marker="$(mktemp)"  # a copy made by a migration from now on is this upgrade's
trap 'rm -f "$marker"' EXIT
log "switched ${previous#releases/} -> ${now#releases/}; restarting the daemons"
if restart; then
  log "upgraded to ${now#releases/}; the previous release stays in $lib/$previous"
  exit 0
fi
log "ERROR: ${now#releases/} did not become healthy within $timeout s; rolling back to ${previous#releases/}"
ln -sfn "$previous" "$lib/current"
restore_premigration_store || true
if restart; then
  log "rolled back: ${previous#releases/} runs again"
else
  log "ERROR: the rollback to ${previous#releases/} did not become healthy either; see dspy-agent logs"
fi
exit 1
