#!/usr/bin/env bash
# Builds the local images the tests and the demo use (no registry is reachable here):
#   dspy-test/busybox:latest  busybox-static with its applets (httpd, nc, sh, ...)
#   dspy-test/redis:latest    the real redis-server binary with the libraries it links
# Each image is rebuilt only when its inputs changed (a content hash is kept as a label).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
docker=/usr/bin/docker
"$docker" version >/dev/null 2>&1 || die "dockerd is not answering (run scripts/test-env.sh up docker)"

# import_dir NAME DIR HASH CHANGES...: docker import of DIR unless NAME already has HASH.
import_dir() {
  local name="$1" dir="$2" hash="$3"; shift 3
  local have
  have=$("$docker" image inspect -f '{{index .Config.Labels "dspy.input-hash"}}' "$name" 2>/dev/null || true)
  if [[ "$have" == "$hash" ]]; then log "image $name is up to date"; return; fi
  local changes=(-c "LABEL dspy.input-hash=$hash")
  for c in "$@"; do changes+=(-c "$c"); done
  tar -C "$dir" -c . | "$docker" import "${changes[@]}" - "$name" >/dev/null
  log "built image $name ($(du -sh "$dir" | cut -f1))"
}

work="$STATE/images"
rm -rf "$work"
mkdir -p "$work"

# busybox: the static binary and one symlink per applet.
bb="$work/busybox"
mkdir -p "$bb/bin" "$bb/tmp" "$bb/etc" "$bb/www"
cp /bin/busybox "$bb/bin/busybox"
for applet in $(/bin/busybox --list); do
  [[ "$applet" == busybox ]] || ln -sf busybox "$bb/bin/$applet"
done
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$bb/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$bb/etc/group"
import_dir dspy-test/busybox:latest "$bb" "$(sha256sum /bin/busybox | cut -c1-16)" \
  'ENV PATH=/bin' 'CMD ["/bin/sh"]'

# redis: redis-server and redis-cli (for compose's in-container health check in the
# startup benchmark) with exactly the libraries ldd lists.
rd="$work/redis"
mkdir -p "$rd/usr/bin" "$rd/data" "$rd/etc" "$rd/tmp"
for bin in redis-server redis-cli; do
  cp /usr/bin/$bin "$rd/usr/bin/$bin"
  while read -r lib; do
    mkdir -p "$rd$(dirname "$lib")"
    cp -L "$lib" "$rd$lib"
  done < <(ldd /usr/bin/$bin | grep -oE '/[^ ]+' | sort -u)
done
printf 'root:x:0:0:root:/:/bin/false\n' >"$rd/etc/passwd"
import_dir dspy-test/redis:latest "$rd" "$(cat /usr/bin/redis-server /usr/bin/redis-cli | sha256sum | cut -c1-16)" \
  'WORKDIR /data' 'EXPOSE 6379' \
  'CMD ["/usr/bin/redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]'
