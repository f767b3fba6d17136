#!/usr/bin/env bash
# Configures and builds one CMake preset (release, debug, asan, tsan) with Ninja + ccache;
# with TARGETs, only those (and what they need).
# Usage: build.sh [PRESET] [TARGET...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
preset="${1:-release}"
shift $(( $# > 0 ? 1 : 0 ))
targets=()
(($# == 0)) || targets=(--target "$@")
cd "$ROOT"
# Clones in other folders (CI's clean clone) share the compiler cache: paths below the
# tree are hashed relative to it.
export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1
log "configuring preset $preset"
cmake --preset "$preset" >"$STATE/logs/cmake-$preset.log" 2>&1 || { cat "$STATE/logs/cmake-$preset.log" >&2; exit 1; }
log "building preset $preset"
start=$SECONDS
cmake --build --preset "$preset" "${targets[@]}"
log "built preset $preset in $((SECONDS - start)) s"
