#!/usr/bin/env bash
# Builds the local images the tests and the demo use (no registry is reachable here):
#   dspy-test/busybox:latest  busybox-static with its applets (httpd, nc, sh, ...)
#   dspy-test/redis:latest    the real redis-server binary with the libraries it links
#   dspy-test/kafka:latest    a real Apache Kafka broker (KRaft, single node): Debian's
#                             JRE with the libraries it links and the broker class path
#                             Maven resolves (deploy/kafka/pom.xml), started by
#                             deploy/kafka/kafka-start.sh
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

# kafka: Debian's JRE (symlinks into /etc resolved) with what its binaries link, the
# broker's jars and the start script; busybox for the shell.
kafka_fetch
jre=$(dirname "$(dirname "$(readlink -f /usr/bin/java)")")
kf="$work/kafka"
mkdir -p "$kf/bin" "$kf/opt/kafka" "$kf/tmp" "$kf/etc" "$kf/var/lib/kafka/data"
cp /bin/busybox "$kf/bin/busybox"
for applet in sh mkdir cat echo sleep ls; do ln -sf busybox "$kf/bin/$applet"; done
cp -a "$jre" "$kf/opt/jre"
# Its symlinks point into /etc/java-17-openjdk and elsewhere: copy what they point to;
# drop the ones that point nowhere (src.zip without the JDK sources).
while read -r link; do
  target=$(readlink -f "$link" || true)
  rm -f "$link"
  if [[ -n "$target" && -e "$target" ]]; then cp -rL "$target" "$link"; fi
done < <(find "$kf/opt/jre" -type l)
while read -r lib; do
  [[ -e "$kf$lib" ]] && continue
  mkdir -p "$kf$(dirname "$lib")"
  cp -L "$lib" "$kf$lib"
done < <(find "$kf/opt/jre" -type f \( -name '*.so' -o -path '*/bin/*' \) -exec ldd {} \; 2>/dev/null |
           awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | grep -v "^$kf" | sort -u)
cp -r "$KAFKA_DIR/libs" "$kf/opt/kafka/libs"
cp "$ROOT/deploy/kafka/kafka-start.sh" "$ROOT/deploy/kafka/kafka-config.sh" "$kf/"
printf 'root:x:0:0:root:/:/bin/sh\n' >"$kf/etc/passwd"
kafka_hash=$( (readlink -f /usr/bin/java; cat "$KAFKA_VERSION_POM" "$ROOT/deploy/kafka/kafka-start.sh" "$ROOT/deploy/kafka/kafka-config.sh") | sha256sum | cut -c1-16)
import_dir dspy-test/kafka:latest "$kf" "$kafka_hash" 'ENV PATH=/opt/jre/bin:/bin' 'EXPOSE 9092' \
  'CMD ["/bin/sh", "/kafka-start.sh"]'
