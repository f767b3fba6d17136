#!/usr/bin/env bash
# Installs dspy-agent from this checkout's release build: a system user, the binaries as
# a release beside earlier ones (PREFIX/lib/dspy-agent/releases/<version>-<commit>, with
# `current` and PREFIX/bin links), the systemd units and dspy-agent.target, the default
# config in /etc/dspy-agent (kept when present), the Slurm templates, the docs, and the
# state directories; then enables the target when systemd runs. Running it again changes
# nothing that is already right.
# Usage: install.sh [--prefix DIR] [--root DIR] [--build DIR] [--release NAME] [--no-enable]
#   --prefix  where bin/ and lib/ go (default /usr/local)
#   --root    install into this root instead of / (packaging, tests): no user, no systemctl
#   --build   the release build to take the binaries from (default build/release; built if missing)
#   --release the release's folder name (default <version>-<commit>)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

prefix=/usr/local root="" build="$ROOT/build/release" enable=1 release=""
while (($#)); do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --root) root="${2%/}"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --release) release="$2"; shift 2 ;;
    --no-enable) enable=0; shift ;;
    *) die "unknown option '$1' (--prefix DIR, --root DIR, --build DIR, --release NAME, --no-enable)" ;;
  esac
done
[[ "$prefix" == /* ]] || die "--prefix must be an absolute path, got '$prefix'"
user=dspy-agent

if [[ ! -x "$build/orchestrator/orchestrator" || ! -x "$build/env_manager/env-manager" || ! -x "$build/cli/dspy-agent" ]]; then
  [[ "$build" == "$ROOT/build/release" ]] || die "no built daemons in $build"
  bash "$here/build.sh" release
fi
version="$("$build/orchestrator/orchestrator" --version 2>/dev/null | awk '{print $NF}' | head -n 1)"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo local)"
[[ -n "$release" ]] || release="${version:-0}-$commit"
[[ "$release" =~ ^[A-Za-z0-9._-]+$ ]] || die "--release: '$release' is not a folder name"

# Copies SRC to DST only when the content differs (so a second run touches nothing).
put() {  # put MODE SRC DST
  local mode="$1" src="$2" dst="$3"
  if [[ -f "$dst" ]] && cmp -s "$src" "$dst"; then return; fi
  install -D -m "$mode" "$src" "$dst"
  log "installed $dst"
}
link() {  # link TARGET NAME
  [[ "$(readlink "$2" 2>/dev/null)" == "$1" ]] && return
  mkdir -p "$(dirname "$2")"
  ln -sfn "$1" "$2"
  log "linked $2 -> $1"
}

# The system user (only on the real root).
if [[ -z "$root" ]]; then
  if ! getent group "$user" >/dev/null; then groupadd --system "$user"; log "created group $user"; fi
  if ! getent passwd "$user" >/dev/null; then
    useradd --system --gid "$user" --home-dir /var/lib/dspy-agent --no-create-home --shell /usr/sbin/nologin \
      --comment "dspy-agent daemons" "$user"
    log "created user $user"
  fi
  getent group docker >/dev/null || log "note: no docker group yet (install Docker): env-manager's unit needs it"
fi

# Binaries: one folder per release, `current` points at the one in use.
lib="$root$prefix/lib/dspy-agent"
rel="$lib/releases/$release"
for b in env_manager/env-manager orchestrator/orchestrator cli/dspy-agent; do
  put 0755 "$build/$b" "$rel/$(basename "$b")"
done
link "releases/$release" "$lib/current"
for b in env-manager orchestrator dspy-agent; do
  link "../lib/dspy-agent/current/$b" "$root$prefix/bin/$b"
done

# Units, with this prefix.
units="$root/etc/systemd/system"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for f in "$ROOT"/deploy/systemd/*.service "$ROOT"/deploy/systemd/*.target; do
  sed -e "s|/usr/local/bin/|$prefix/bin/|g" -e "s|/usr/local/share/doc/|$prefix/share/doc/|g" "$f" >"$tmp/$(basename "$f")"
  put 0644 "$tmp/$(basename "$f")" "$units/$(basename "$f")"
done

# Config: the defaults, never over an operator's file.
conf="$root/etc/dspy-agent"
for f in env-manager.yaml orchestrator.yaml services.yaml; do
  if [[ -f "$conf/$f" ]]; then
    cmp -s "$ROOT/deploy/config/$f" "$conf/$f" || log "kept $conf/$f (differs from the default; the default is $ROOT/deploy/config/$f)"
  else
    put 0640 "$ROOT/deploy/config/$f" "$conf/$f"
  fi
done
for f in "$ROOT"/deploy/slurm/*.sbatch; do
  [[ -f "$conf/slurm/$(basename "$f")" ]] || put 0644 "$f" "$conf/slurm/$(basename "$f")"
done
for f in "$ROOT"/docs/*.md; do put 0644 "$f" "$root$prefix/share/doc/dspy-agent/$(basename "$f")"; done

# State: the units' StateDirectory= creates these too; made here for a first manual start.
mkdir -p "$root/var/lib/dspy-agent/orchestrator" "$root/var/lib/dspy-agent/env-manager"
if [[ -z "$root" ]]; then
  chown -R "$user:$user" /var/lib/dspy-agent
  chgrp "$user" "$conf" "$conf"/*.yaml
  chmod 0750 "$conf"
fi

if [[ -z "$root" && -d /run/systemd/system ]]; then
  systemctl daemon-reload
  if ((enable)); then systemctl enable dspy-agent.target >/dev/null 2>&1 && log "enabled dspy-agent.target"; fi
  log "installed release $release; start with: systemctl start dspy-agent.target (or: dspy-agent start)"
else
  log "installed release $release into ${root:-/}${root:+ (staging root)}; systemd is not running here, so nothing was enabled"
fi
