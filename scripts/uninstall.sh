#!/usr/bin/env bash
# Removes what install.sh put in place: stops and disables dspy-agent.target (when systemd
# runs), removes the units, binaries, releases and docs. Keeps the config
# (/etc/dspy-agent) and the data (/var/lib/dspy-agent: the task store) unless --purge,
# which also removes the system user.
# Usage: uninstall.sh [--prefix DIR] [--root DIR] [--purge]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

prefix=/usr/local root="" purge=0
while (($#)); do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --root) root="${2%/}"; shift 2 ;;
    --purge) purge=1; shift ;;
    *) die "unknown option '$1' (--prefix DIR, --root DIR, --purge)" ;;
  esac
done

if [[ -z "$root" && -d /run/systemd/system ]]; then
  systemctl disable --now dspy-agent.target dspy-orchestrator.service dspy-env-manager.service >/dev/null 2>&1 || true
fi
for u in dspy-agent.target dspy-orchestrator.service dspy-env-manager.service; do
  [[ -e "$root/etc/systemd/system/$u" ]] && rm -f "$root/etc/systemd/system/$u" && log "removed $root/etc/systemd/system/$u"
done
[[ -z "$root" && -d /run/systemd/system ]] && systemctl daemon-reload
for b in env-manager orchestrator dspy-agent; do
  [[ -L "$root$prefix/bin/$b" ]] && rm -f "$root$prefix/bin/$b"
done
rm -rf "$root$prefix/lib/dspy-agent" "$root$prefix/share/doc/dspy-agent"
if ((purge)); then
  rm -rf "$root/etc/dspy-agent" "$root/var/lib/dspy-agent"
  if [[ -z "$root" ]] && getent passwd dspy-agent >/dev/null; then userdel dspy-agent; fi
  if [[ -z "$root" ]] && getent group dspy-agent >/dev/null; then groupdel dspy-agent; fi
  log "removed dspy-agent, its config and its data"
else
  log "removed dspy-agent; kept ${root}/etc/dspy-agent (config) and ${root}/var/lib/dspy-agent (data): --purge removes them"
fi
