#!/bin/sh
# store.sh - runs the store benchmark (bench_store) in a scratch directory and prints its table.
# usage: bench/store.sh [BUILD_DIR] [bench_store options]   (default BUILD_DIR: build)
# The figures in docs/PERFORMANCE.md come from: bench/store.sh build -n 20000 -r 3
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
prog=$build/bench/bench_store
if [ ! -x "$prog" ]; then
    echo "store.sh: $prog not found: run 'meson setup $build && ninja -C $build bench/bench_store'" >&2
    exit 2
fi
# The pre-filled 1,000,000-task file takes about 130 MB: use TMPDIR if it has room.
dir=$(mktemp -d "${TMPDIR:-/tmp}/bench_store.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM
echo "# $(uname -srm), $(nproc) cpu, $(date -u +%Y-%m-%dT%H:%M:%SZ), $("$build/src/taskctl" --version 2>/dev/null || echo taskctl?)"
"$prog" "$@" "$dir"
