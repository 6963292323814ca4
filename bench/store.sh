#!/bin/sh
# bench/store.sh - runs the store benchmark (bench_store) in a scratch directory and prints its
# table.
#
#   bench/store.sh [BUILD_DIR] [-n APPENDS] [-r ROUNDS] [-f]    (default BUILD_DIR: build)
#
# Measures appends/s into a scratch tasks file with 0, 100,000 and 1,000,000 tasks already in
# it (one process), then with 1, 2, 4 and 8 processes appending at once to an empty file.
# -n appends per measurement (default 20000), -r rounds per figure, the best is kept (default
# 3), -f fdatasync after each append. The pre-filled file takes about 130 MB, under TMPDIR
# (default /tmp). The figures in docs/PERFORMANCE.md come from: bench/store.sh build -n 20000 -r 3
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ME=bench/store.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
build=$ROOT/build
case ${1:-} in -* | '') ;; *) build=$1; shift ;; esac
# What follows BUILD_DIR goes to bench_store, checked here so that a mistake is named.
want= # the option whose number comes next
for arg in "$@"; do
    if [ -n "$want" ]; then
        case $arg in '' | *[!0-9]* | 0) bench_usage_error "$want $arg: not a positive integer" ;; esac
        want=
        continue
    fi
    case $arg in
    -h | --help) bench_help; exit 0 ;;
    -n | -r) want=$arg ;;
    -f) ;;
    -?*) bench_usage_error "unknown option $arg" ;;
    *) bench_usage_error "unexpected argument '$arg' (BUILD_DIR comes first)" ;;
    esac
done
[ -z "$want" ] || bench_usage_error "$want needs a number"
bench_build_dir "$build"
prog=$build/bench/bench_store
if [ ! -x "$prog" ]; then
    echo "$ME: $prog not found: run 'meson setup $build && ninja -C $build bench/bench_store'" >&2
    exit 2
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/bench_store.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM
echo "# $(uname -srm), $(nproc) cpu, $(date -u +%Y-%m-%dT%H:%M:%SZ), $("$build/src/taskctl" --version 2>/dev/null || echo taskctl?)"
"$prog" "$@" "$dir"
