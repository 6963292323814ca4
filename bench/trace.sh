#!/usr/bin/env bash
# bench/trace.sh - what taskserver --trace costs: POST /tareas with and without it, same run.
#
#   bench/trace.sh [BUILD_DIR] [SECONDS] [ROUNDS] [CONNECTIONS] [WORKERS]
#                                                       (defaults: build 5 6 32 2)
#
# Each round starts two fresh servers on 127.0.0.1 from BUILD_DIR (--quiet, each its own empty
# tasks.json), one of them with --trace (and a cap high enough never to be reached), and runs
# wrk -c CONNECTIONS -d SECONDS against each in turn, POST /tareas with a distinct titulo per
# request; the order alternates from round to round. Prints every rate and the server's CPU
# time per request, the ratios traced / untraced of each round (for CPU: untraced / traced, so
# that below 1 is a cost either way), and the median and range of those ratios. Socket errors, non-2xx
# answers or a trace that hit its cap are reported: they void the figures. Needs wrk (Debian
# package wrk; install it by hand, this is not a test). Not a test: the figures vary with the
# machine's load.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ME=bench/trace.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_options "$@"
BUILD=${1:-$ROOT/build}
SECS=${2:-5}
ROUNDS=${3:-6}
CONNS=${4:-32}
WORKERS=${5:-2}

bench_build_dir "$BUILD"
command -v wrk >/dev/null || { echo "$ME: wrk not found (apt-get install wrk)" >&2; exit 1; }
[ -x "$BUILD/src/taskserver" ] || { echo "$ME: $BUILD/src/taskserver: not built" >&2; exit 1; }
for v in "$SECS" "$ROUNDS" "$CONNS" "$WORKERS"; do
    case $v in '' | *[!0-9]* | 0) echo "$ME: SECONDS, ROUNDS, CONNECTIONS, WORKERS: positive integers" >&2; exit 2 ;; esac
done
if [ "$SECS" -gt 60 ] || [ "$ROUNDS" -gt 20 ]; then echo "$ME: at most 60 s and 20 rounds" >&2; exit 2; fi

TMP=$(mktemp -d /tmp/bench-trace.XXXXXX)
SERVER_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        SERVER_PID=""
    fi
}
cleanup() {
    stop_server
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

POST_LUA="$(cd "$(dirname "$0")" && pwd)/post.lua" # a distinct titulo per request

# cpu_ns PID...: CPU time so far of the processes, all their threads (/proc/PID/task/*/schedstat).
cpu_ns() {
    local p
    for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done | awk '{n += $1} END {printf "%.0f", n}'
}

# run MODE ROUND -> prints "RATE CPU_US": the POST rate, and the CPU time the server's processes
# spent per request (which depends much less than the rate on the machine's other work); MODE
# is plain or trace.
run() {
    local mode=$1 dir="$TMP/$1-$2" port="" extra=()
    mkdir -p "$dir"
    [ "$mode" = trace ] && extra=(--trace "$dir/trace" --trace-max-events 100000000)
    "$BUILD/src/taskserver" --port 0 --bind 127.0.0.1 --workers "$WORKERS" --quiet \
        --file "$dir/tasks.json" "${extra[@]}" 2>"$dir/server.err" &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$dir/server.err")
        [ -n "$port" ] && curl -s -o /dev/null "http://127.0.0.1:$port/health" && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$dir/server.err" >&2; echo "$ME: the server did not start" >&2; exit 1; }
    local pids c0 c1
    read -r -a pids <<<"$SERVER_PID $(pgrep -P "$SERVER_PID" | tr '\n' ' ')"
    c0=$(cpu_ns "${pids[@]}")
    wrk -t 2 -c "$CONNS" -d "${SECS}s" -s "$POST_LUA" "http://127.0.0.1:$port" >"$dir/wrk.out" 2>&1
    c1=$(cpu_ns "${pids[@]}")
    stop_server
    if grep -qE 'Socket errors|Non-2xx' "$dir/wrk.out"; then
        echo "$ME: $mode round $2: $(grep -E 'Socket errors|Non-2xx' "$dir/wrk.out" | tr '\n' ' ')" >&2
    fi
    if [ "$mode" = trace ] && grep -q '^# stopped' "$dir"/trace/*.trace; then
        echo "$ME: trace round $2 hit its event cap: figures void" >&2
    fi
    awk -v a="$c0" -v b="$c1" '/requests in/ { n = $1 } /^Requests\/sec:/ { r = $2 }
        END { printf "%.0f %.2f\n", r, (b - a) / n / 1000 }' "$dir/wrk.out"
    [ "$mode" = trace ] && du -sk "$dir/trace" | awk '{ print $1 }' >"$TMP/kb-$2"
    rm -rf "$dir/tasks.json"
}

echo "taskserver $("$BUILD/src/taskserver" --version 2>&1 | head -1), $WORKERS workers," \
    "wrk -c $CONNS -d ${SECS}s POST /tareas, $ROUNDS rounds, order alternating"
ratios=()
cpus=()
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
        plain=$(run plain "$r")
        traced=$(run trace "$r")
    else
        traced=$(run trace "$r")
        plain=$(run plain "$r")
    fi
    read -r p_rate p_cpu <<<"$plain"
    read -r t_rate t_cpu <<<"$traced"
    ratio=$(awk -v a="$t_rate" -v b="$p_rate" 'BEGIN { printf "%.3f", a / b }')
    cpu=$(awk -v a="$p_cpu" -v b="$t_cpu" 'BEGIN { printf "%.3f", a / b }')
    ratios+=("$ratio")
    cpus+=("$cpu")
    printf 'round %d: without %s req/s (%s us CPU/request), with --trace %s req/s (%s us CPU/request, trace %s KiB), ratio %s, CPU ratio without/with %s\n' \
        "$r" "$p_rate" "$p_cpu" "$t_rate" "$t_cpu" "$(cat "$TMP/kb-$r" 2>/dev/null || echo '?')" "$ratio" "$cpu"
done
summary() {
    sort -n | awk -v what="$1" '
        { v[NR] = $1 }
        END {
            m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%s: median %.3f, range %.3f .. %.3f (%d rounds)\n", what, m, v[1], v[NR], NR
        }'
}
printf '%s\n' "${ratios[@]}" | summary "rate ratio with/without --trace"
printf '%s\n' "${cpus[@]}" | summary "CPU per request, without/with --trace"
