#!/usr/bin/env bash
# Builds the test image dspy-test/systemd:bookworm: a Debian 12 root file system from
# debootstrap (cached in .state/systemd-root) with systemd as PID 1 and the daemons'
# runtime libraries, for the test that boots the units under a real systemd (this
# machine's PID 1 is not systemd). Needs dockerd (scripts/test-env.sh up docker) and the
# Debian mirror. Does nothing when the image exists.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

image=dspy-test/systemd:bookworm
docker image inspect "$image" >/dev/null 2>&1 && { log "$image exists"; exit 0; }
command -v debootstrap >/dev/null || die "debootstrap is not installed (scripts/install-deps.sh)"
rootfs="$STATE/systemd-root"
libs=systemd,systemd-sysv,dbus,procps,curl,ca-certificates,libgrpc++1.51,libprotobuf32,libspdlog1.10,libfmt9
libs+=,libprometheus-cpp-core1.0,libcpp-httplib0.11,libyaml-cpp0.7,libcurl4,libsqlite3-0,librdkafka1
libs+=,libabsl20220623,libc-ares2,libre2-9,libsystemd0
if [[ ! -f "$rootfs/.complete" ]]; then
  rm -rf "$rootfs"
  log "debootstrap bookworm into $rootfs (about 2 minutes)"
  mirror="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  debootstrap --variant=minbase --include="$libs" bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" \
    >"$STATE/logs/debootstrap.log" 2>&1 || { tail -n 20 "$STATE/logs/debootstrap.log" >&2; die "debootstrap failed"; }
  touch "$rootfs/.complete"
fi
tar -C "$rootfs" --exclude=./.complete -c . | docker import --change 'CMD ["/lib/systemd/systemd"]' - "$image" >/dev/null
log "built $image"
