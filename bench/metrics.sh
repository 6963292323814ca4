#!/usr/bin/env bash
# bench/metrics.sh - the cost of metrics counting: POST /tareas with and without it, same run, alternated.
#
#   bench/metrics.sh [BUILD_ON] [BUILD_OFF] [SECONDS] [ROUNDS] [WORKERS] [CONNECTIONS]
#       defaults: build build-nometrics 5 9 2 32
#
# BUILD_ON is a default build (metrics counted), BUILD_OFF one made with -Dmetrics=false
# (`meson setup build-nometrics -Dmetrics=false`); both locking builds of the same source.
# Starts both servers on 127.0.0.1 (WORKERS workers, --quiet, each its own fresh tasks.json)
# and runs ROUNDS rounds of wrk -t 2 -c CONNECTIONS -d SECONDS on POST /tareas (a distinct
# titulo per request) against each, alternating which goes first (on/off, then off/on, ...)
# so that a drift of the machine's speed falls on both alike; halfway both servers are
# restarted in the other order (an A/A run, the same build on both sides, showed the server
# started first some percent slower here, for no reason of its own). Prints every rate, each
# round's ratio on/off, their median and range, and the ratio of the medians. The goal is
# an overhead within 3% (median ratio >= 0.97). On a machine shared with other work the
# rates swing with its load, so each run also records the workers' CPU time (from
# /proc/PID/schedstat, nanoseconds on a CPU) per request: the cost itself, much less
# disturbed by what else runs; and bench_metrics times, without HTTP, exactly the work
# counting adds to one POST, to be set against the CPU time of a whole POST measured here.
# Socket errors or non-2xx answers are printed: they are bugs.
# Needs wrk (apt-get install wrk); not a test.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ME=bench/metrics.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_options "$@"
ON=${1:-$ROOT/build}
OFF=${2:-$ROOT/build-nometrics}
SECS=${3:-5}
ROUNDS=${4:-9}
WORKERS=${5:-2}
CONNS=${6:-32}

command -v wrk >/dev/null || { echo "$ME: wrk not found (apt-get install wrk)" >&2; exit 1; }
for v in "$SECS" "$ROUNDS" "$WORKERS" "$CONNS"; do
    case $v in '' | *[!0-9]* | 0) echo "$ME: SECONDS ROUNDS WORKERS CONNECTIONS: positive integers" >&2; exit 2 ;; esac
done
[ "$SECS" -le 60 ] && [ "$ROUNDS" -le 30 ] || { echo "$ME: at most 60 s and 30 rounds" >&2; exit 2; }
for b in "$ON" "$OFF"; do
    bench_build_dir "$b"
    [ -x "$b/src/taskserver" ] || { echo "$ME: $b/src/taskserver: not built" >&2; exit 1; }
    case $("$b/src/taskserver" --version 2>&1) in
    *"locking on"*) ;;
    *) echo "$ME: $b/src/taskserver is not a locking build" >&2; exit 1 ;;
    esac
done

TMP=$(mktemp -d /tmp/bench-metrics.XXXXXX)
PIDS=()
stop_all() {
    local p
    for p in "${PIDS[@]}"; do
        kill -TERM -- "-$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    PIDS=()
}
cleanup() {
    stop_all
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

POST_LUA="$(cd "$(dirname "$0")" && pwd)/post.lua" # a distinct titulo per request

# start NAME BUILD: a server in its own session (killed as a group); sets PORT_<NAME>.
start() {
    local name=$1 build=$2 port=""
    setsid "$build/src/taskserver" --port 0 --bind 127.0.0.1 --workers "$WORKERS" \
        --file "$TMP/$name.json" --quiet 2>"$TMP/$name.err" &
    PIDS+=($!)
    printf -v "PID_$name" '%s' "$!"
    for _ in $(seq 1 100); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$TMP/$name.err")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$TMP/$name.err" >&2; echo "$ME: $name did not start" >&2; exit 1; }
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/health" && break
        sleep 0.1
    done
    printf -v "PORT_$name" '%s' "$port"
}

start on "$ON"
start off "$OFF"
stored_on=0 stored_off=0
code_on=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_on/metrics")
code_off=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_off/metrics")
[ "$code_on" = 200 ] || { echo "$ME: $ON counts no metrics (GET /metrics: $code_on)" >&2; exit 1; }
[ "$code_off" = 404 ] || { echo "$ME: $OFF is not a -Dmetrics=false build (GET /metrics: $code_off)" >&2; exit 1; }

# cpu_ns NAME: nanoseconds the server's workers have spent on a CPU so far.
cpu_ns() {
    local master w total=0 t
    master=$(eval echo "\$PID_$1")
    for w in $(pgrep -P "$master"); do
        read -r t _ <"/proc/$w/schedstat" || t=0
        total=$((total + t))
    done
    echo "$total"
}

# run NAME: one wrk run against that server; prints its rate and CPU microseconds per request.
run() {
    local out="$TMP/wrk.out" port rate errs non2xx c0 c1 n
    port=$(eval echo "\$PORT_$1")
    c0=$(cpu_ns "$1")
    timeout $((SECS + 30)) wrk -t 2 -c "$CONNS" -d "${SECS}s" -s "$POST_LUA" \
        "http://127.0.0.1:$port/tareas" >"$out" 2>&1
    c1=$(cpu_ns "$1")
    n=$(awk '/requests in/ {print $1}' "$out")
    rate=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    errs=$(grep 'Socket errors' "$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$out")
    [ -n "$rate" ] || { cat "$out" >&2; echo "$ME: wrk failed ($1)" >&2; exit 1; }
    [ -z "$errs" ] || echo "  $1: $errs" >&2
    [ -z "$non2xx" ] || echo "  $1: $non2xx non-2xx answers" >&2
    echo "$rate $(awk -v c="$((c1 - c0))" -v n="$n" 'BEGIN {printf "%.3f", c / n / 1000}')"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "wrk -t 2 -c $CONNS -d ${SECS}s on POST /tareas, $WORKERS workers, $ROUNDS rounds alternated," \
    "127.0.0.1, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
rates_on=() rates_off=() ratios=() cpu_ratios=() cpu_off=()
for r in $(seq 1 "$ROUNDS"); do
    if [ "$r" = $((ROUNDS / 2 + 1)) ]; then
        stored_on=$(grep -c '^{"id":' "$TMP/on.json") stored_off=$(grep -c '^{"id":' "$TMP/off.json")
        stop_all
        rm -f "$TMP/on.json" "$TMP/off.json" "$TMP/on.err" "$TMP/off.err"
        start off "$OFF"
        start on "$ON"
        echo "(both servers restarted, the other one first)"
    fi
    if [ $((r % 2)) = 1 ]; then
        ra=$(run on) || exit 1
        rb=$(run off) || exit 1
    else
        rb=$(run off) || exit 1
        ra=$(run on) || exit 1
    fi
    read -r a ca <<<"$ra"
    read -r b cb <<<"$rb"
    q=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.4f", a / b}')
    cq=$(awk -v a="$ca" -v b="$cb" 'BEGIN {printf "%.4f", a / b}')
    echo "round $r: metrics on $a req/s ($ca us CPU/request), off $b req/s ($cb us)," \
        "rate on/off $q, CPU on/off $cq"
    rates_on+=("$a") rates_off+=("$b") ratios+=("$q") cpu_ratios+=("$cq") cpu_off+=("$cb")
done
m_on=$(printf '%s\n' "${rates_on[@]}" | median)
m_off=$(printf '%s\n' "${rates_off[@]}" | median)
m_q=$(printf '%s\n' "${ratios[@]}" | median)
lo=$(printf '%s\n' "${ratios[@]}" | sort -g | head -1)
hi=$(printf '%s\n' "${ratios[@]}" | sort -g | tail -1)
echo "median: metrics on $m_on req/s, off $m_off req/s, ratio of medians" \
    "$(awk -v a="$m_on" -v b="$m_off" 'BEGIN {printf "%.4f", a / b}')"
echo "per-round rate on/off: median $m_q, range $lo .. $hi (goal: median >= 0.97)"
echo "per-round CPU per request on/off: median $(printf '%s\n' "${cpu_ratios[@]}" | median)," \
    "range $(printf '%s\n' "${cpu_ratios[@]}" | sort -g | head -1) .." \
    "$(printf '%s\n' "${cpu_ratios[@]}" | sort -g | tail -1) (goal: median <= 1.03)"
m_coff=$(printf '%s\n' "${cpu_off[@]}" | median)
if [ -x "$ON/bench/bench_metrics" ]; then
    added=$("$ON/bench/bench_metrics" | sed -n 's/^bench_metrics: \([0-9.]*\) ns.*/\1/p')
    echo "bench_metrics: $added ns of counting work per POST; a POST without it: median $m_coff us" \
        "of worker CPU: $(awk -v a="$added" -v c="$m_coff" 'BEGIN {printf "%.2f", a / (c * 1000) * 100}')%"
fi
echo "stored: on $((stored_on + $(grep -c '^{"id":' "$TMP/on.json"))), off" \
    "$((stored_off + $(grep -c '^{"id":' "$TMP/off.json"))) tasks"
