#!/usr/bin/env bash
# bench/ab.sh - two taskserver builds against each other: the ratio B/A of their rates, round by
# round, on the same machine in the same run.
#
#   bench/ab.sh BUILD_A BUILD_B [SECONDS] [ROUNDS] [WORKERS] [-- EXTRA TASKSERVER FLAGS]
#   (defaults: 5 s, 5 rounds, 2 workers)
#
# For the question "did this change cost throughput?": BUILD_A is the reference (e.g. a build of
# the commit before), BUILD_B the candidate. Each round runs wrk -t 2 -c 32 on POST /tareas (a
# distinct titulo per request) and then GET /health against A, then against B (the order flips
# every round, so that a drifting machine favours neither), each server started fresh on a new
# tasks.json, --quiet, on 127.0.0.1. Prints every rate and, per request, the median, minimum and
# maximum of the per-round ratios B/A: a pair measured a few seconds apart shares the machine's
# mood, so the ratio is steadier than either rate. Not a test; needs wrk (apt-get install wrk).
set -u
ME=bench/ab.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_options "$@"
[ $# -ge 2 ] || {
    bench_help >&2
    exit 2
}
A=$1 B=$2
shift 2
SECS=5 ROUNDS=5 WORKERS=2
for v in SECS ROUNDS WORKERS; do
    [ $# -gt 0 ] && [ "$1" != -- ] || break
    printf -v "$v" '%s' "$1"
    shift
done
[ "${1:-}" = -- ] && shift
EXTRA=("$@")
for v in "$SECS" "$ROUNDS" "$WORKERS"; do
    case $v in '' | *[!0-9]* | 0) echo "$ME: SECONDS, ROUNDS, WORKERS: positive integers" >&2; exit 2 ;; esac
done
[ "$SECS" -le 60 ] && [ "$ROUNDS" -le 30 ] || { echo "$ME: at most 60 s and 30 rounds" >&2; exit 2; }
command -v wrk >/dev/null || { echo "$ME: wrk not found (apt-get install wrk)" >&2; exit 1; }
for b in "$A" "$B"; do
    bench_build_dir "$b"
    [ -x "$b/src/taskserver" ] || { echo "$ME: $b/src/taskserver: not built" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/bench-ab.XXXXXX)
PID=""
stop() {
    if [ -n "$PID" ]; then
        kill -TERM -- "-$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
        PID=""
    fi
}
trap 'stop; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

POST_LUA="$(cd "$(dirname "$0")" && pwd)/post.lua" # a distinct titulo per request

# start BUILD: a fresh server; sets PID and PORT.
start() {
    rm -f "$TMP/tasks.json"
    setsid "$1/src/taskserver" --port 0 --bind 127.0.0.1 --workers "$WORKERS" \
        --file "$TMP/tasks.json" --quiet "${EXTRA[@]}" 2>"$TMP/server.err" &
    PID=$!
    PORT=""
    for _ in $(seq 1 100); do
        PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$TMP/server.err")
        [ -n "$PORT" ] && break
        sleep 0.1
    done
    [ -n "$PORT" ] || { cat "$TMP/server.err" >&2; echo "$ME: $1 did not start" >&2; exit 1; }
    for _ in $(seq 1 50); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/health" && return 0
        sleep 0.1
    done
    echo "$ME: $1 does not answer" >&2
    exit 1
}

# rate URL [WRK ARGS]: requests per second; socket errors and non-2xx answers are reported.
rate() {
    local url=$1 out="$TMP/wrk.out" r
    shift
    timeout $((SECS + 30)) wrk -t 2 -c 32 -d "${SECS}s" "$@" "$url" >"$out" 2>&1
    r=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    [ -n "$r" ] || { cat "$out" >&2; echo "$ME: wrk failed" >&2; exit 1; }
    grep -q 'Socket errors\|Non-2xx' "$out" && grep 'Socket errors\|Non-2xx' "$out" | sed 's/^/  /' >&2
    echo "$r"
}

# measure BUILD: "POST_RATE GET_RATE"
measure() {
    start "$1"
    local p g
    p=$(rate "http://127.0.0.1:$PORT/tareas" -s "$POST_LUA") || exit 1
    g=$(rate "http://127.0.0.1:$PORT/health") || exit 1
    stop
    echo "$p $g"
}

stats() { sort -g | awk '{a[NR]=$1} END {printf "median %.3f (min %.3f, max %.3f, %d rounds)", a[int((NR+1)/2)], a[1], a[NR], NR}'; }

echo "A: $A  B: $B  ${EXTRA[*]}"
echo "wrk -t 2 -c 32 -d ${SECS}s, $WORKERS workers, $ROUNDS rounds, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
post_ratios=() get_ratios=()
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then
        read -r ap ag < <(measure "$A") || exit 1
        read -r bp bg < <(measure "$B") || exit 1
    else
        read -r bp bg < <(measure "$B") || exit 1
        read -r ap ag < <(measure "$A") || exit 1
    fi
    pr=$(awk -v a="$ap" -v b="$bp" 'BEGIN {printf "%.3f", b / a}')
    gr=$(awk -v a="$ag" -v b="$bg" 'BEGIN {printf "%.3f", b / a}')
    echo "round $r: POST A $ap B $bp (B/A $pr); GET /health A $ag B $bg (B/A $gr)"
    post_ratios+=("$pr") get_ratios+=("$gr")
done
echo "POST /tareas B/A: $(printf '%s\n' "${post_ratios[@]}" | stats)"
echo "GET /health  B/A: $(printf '%s\n' "${get_ratios[@]}" | stats)"
