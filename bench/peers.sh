#!/usr/bin/env bash
# shellcheck disable=SC2154 # TS_PORT_name, NG_PID_name...: set by printf -v in ts_start, nginx_start
# bench/peers.sh - every figure of issue 15 in one run: taskserver against its peers (nginx, Redis)
# or against itself on a small file, each as a ratio to a reference measured in the same
# invocation, the two sides alternating round by round (the order flips every round).
#
#   bench/peers.sh [OPTION]...
#
#   -b, --build DIR      the taskserver build to measure (default: build); locking on
#   -r, --rounds N       alternations per measurement, 1..20 (default 3; fewer than 3 is a smoke run)
#   -s, --seconds S      length of each wrk run, 1..60 (default 5)
#   -c, --connections N  wrk connections for the POST and GET /tareas/ID runs (default 32)
#       --only LIST      comma-separated sections (default: all of them, in this order):
#                          post     POST /tareas vs nginx `return 201`, 2 and 4 workers (>= 0.9)
#                          durable  POST --fsync vs redis-server appendfsync always, RPUSH (>= 1.0)
#                          getid    GET /tareas/ID random ids, 10M-task vs 1k-task file (>= 0.9),
#                                   and preads per lookup (strace -c on the workers)
#                          startup  start-up to listening on the 10M-task file (< 0.5 s), vs 1k;
#                                   and the time to the background check's verdict
#                          conns    10,000 keep-alive connections, 2 workers, default flags:
#                                   answers by status (goal: 0 refused), nginx alongside
#                          list     GET /tareas on a 1M-task file vs nginx sendfile of that file,
#                                   rate ratio (keep ~1.0) and the workers' peak RSS
#       --conns N        connections for the conns section (default 10000)
#       --cache DIR      where the 10M-, 1M- and 1k-task files are made once and reused
#                        (default: BUILD/bench-cache; the 10M file is about 1.1 GB)
#       --remove-cache   delete the cache directory and exit
#   -h, --help           this text
#
# Everything runs on 127.0.0.1; every wait and every client run is bounded in time (a full run
# takes about 6 minutes with 3 rounds, 9 with 5, plus about 2 minutes to make the files once). Needs
# the benchmark-only packages, installed by hand (never by tools/test):
#   apt-get install -y wrk nginx redis-server redis-tools strace curl python3
# The output ends with a table: for each measurement the median, minimum and maximum of its
# per-round ratios, the goal and whether the median meets it. Not a test: figures depend on the
# machine's load, printed at the start of every section.
set -u
ME=bench/peers.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

die() {
    echo "$ME: $*" >&2
    exit 1
}

BUILD=$ROOT/build
ROUNDS=3
SECS=5
CONNS=32
ONLY=post,durable,getid,startup,conns,list
NCONNS=10000
CACHE=""
REMOVE_CACHE=0
while [ $# -gt 0 ]; do
    case $1 in
    -b | --build) BUILD=${2:?}; shift ;;
    -r | --rounds) ROUNDS=${2:?}; shift ;;
    -s | --seconds) SECS=${2:?}; shift ;;
    -c | --connections) CONNS=${2:?}; shift ;;
    --only) ONLY=${2:?}; shift ;;
    --conns) NCONNS=${2:?}; shift ;;
    --cache) CACHE=${2:?}; shift ;;
    --remove-cache) REMOVE_CACHE=1 ;;
    -h | --help) bench_help; exit 0 ;;
    *) bench_usage_error "unknown option $1" ;;
    esac
    shift
done
for v in "$ROUNDS" "$SECS" "$CONNS" "$NCONNS"; do
    case $v in '' | *[!0-9]* | 0) echo "$ME: --rounds, --seconds, --connections, --conns: positive integers" >&2; exit 2 ;; esac
done
[ "$ROUNDS" -le 20 ] && [ "$SECS" -le 60 ] && [ "$CONNS" -le 1000 ] && [ "$NCONNS" -le 30000 ] ||
    { echo "$ME: at most 20 rounds, 60 s, 1000 connections, --conns 30000" >&2; exit 2; }
bench_build_dir "$BUILD"
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || die "no build directory (meson setup build && meson compile -C build)"
CACHE=${CACHE:-$BUILD/bench-cache}
if [ "$REMOVE_CACHE" = 1 ]; then
    rm -rf -- "$CACHE" && echo "$ME: removed $CACHE"
    exit 0
fi
for s in ${ONLY//,/ }; do
    case $s in post | durable | getid | startup | conns | list) ;; *) echo "$ME: unknown section $s" >&2; exit 2 ;; esac
done
want() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }

missing=()
for t in wrk nginx redis-server redis-benchmark strace curl python3 ss; do
    command -v "$t" >/dev/null || missing+=("$t")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "$ME: missing: ${missing[*]}" >&2
    echo "$ME: benchmark-only packages, install them by hand:" \
        "apt-get install -y wrk nginx redis-server redis-tools strace curl python3 iproute2" >&2
    exit 1
fi
TS=$BUILD/src/taskserver
RAW=$BUILD/tests/raw_http
[ -x "$TS" ] || die "$TS: not built (meson compile -C $BUILD)"
case $("$TS" --version 2>&1) in *"locking on"*) ;; *) die "$TS is not a locking build" ;; esac
if want conns && [ ! -x "$RAW" ]; then
    die "$RAW: not built (meson setup $BUILD -Dtests=true && meson compile -C $BUILD)"
fi

TMP=$(mktemp -d /tmp/bench-peers.XXXXXX) || die "mktemp failed"
PIDS=()   # what this script started and must stop at exit: nginx, redis-server, taskserver
GROUPS_=" " # those of PIDS that lead their own process group (taskserver, via setsid)
# signal PID: TERM to the process group PID leads (taskserver and its workers), else to PID.
signal_stop() {
    case $GROUPS_ in
    *" $1 "*) kill -TERM -- "-$1" 2>/dev/null ;;
    *) kill -TERM "$1" 2>/dev/null ;;
    esac
}
cleanup() {
    local p
    for p in "${PIDS[@]}"; do signal_stop "$p"; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load() { cut -d' ' -f1-3 /proc/loadavg; }
section() { printf '\n== %s (load average %s)\n' "$1" "$(load)"; }
# stats: median min max count of the numbers on stdin
stats() { sort -g | awk '{a[NR]=$1} END {if (NR) printf "%s %s %s %d", a[int((NR+1)/2)], a[1], a[NR], NR}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 == 0) print "nan"; else printf "%.3f", a / b}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

RESULTS=() # "label|median|min|max|rounds|goal|met"
# record LABEL GOAL_OP GOAL_VALUE VALUES...: summary line and a row of the final table.
record() {
    local label=$1 op=$2 goal=$3 med min max n met
    shift 3
    read -r med min max n < <(printf '%s\n' "$@" | stats)
    [ -n "${med:-}" ] || { RESULTS+=("$label|-|-|-|0|$op $goal|no data"); return; }
    case $op in
    ">=") met=$(awk -v m="$med" -v g="$goal" 'BEGIN {print (m >= g) ? "yes" : "NO"}') ;;
    "<") met=$(awk -v m="$med" -v g="$goal" 'BEGIN {print (m < g) ? "yes" : "NO"}') ;;
    "=") met=$(awk -v m="$max" -v g="$goal" 'BEGIN {print (m == g) ? "yes" : "NO"}') ;;
    *) met="" ;;
    esac
    if [ -n "$met" ]; then
        echo "-> $label: median $med (min $min, max $max, $n rounds); goal $op $goal: $met"
        RESULTS+=("$label|$med|$min|$max|$n|$op $goal|$met")
    else
        echo "-> $label: median $med (min $min, max $max, $n rounds)"
        RESULTS+=("$label|$med|$min|$max|$n|-|")
    fi
}

# ---------------------------------------------------------------- servers

# ts_start NAME FILE WORKERS [FLAGS...]: a taskserver in its own process group on 127.0.0.1:0.
# Sets TS_PID_NAME, TS_PORT_NAME; the log is $TMP/NAME.log.
ts_start() {
    local name=$1 file=$2 workers=$3 port="" pid
    shift 3
    setsid "$TS" --port 0 --bind 127.0.0.1 --workers "$workers" --file "$file" "$@" \
        2>"$TMP/$name.log" &
    pid=$!
    PIDS+=("$pid")
    GROUPS_="$GROUPS_$pid "
    for _ in $(seq 1 300); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$TMP/$name.log")
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$TMP/$name.log" >&2; die "taskserver ($name) did not start"; }
    for _ in $(seq 1 100); do
        [ "$(grep -c 'started worker' "$TMP/$name.log")" -ge "$workers" ] && break
        sleep 0.1
    done
    printf -v "TS_PID_$name" '%s' "$pid"
    printf -v "TS_PORT_$name" '%s' "$port"
}
ts_workers() { sed -n 's/.*started worker \([0-9][0-9]*\).*/\1/p' "$TMP/$1.log"; }
# ts_wait_verdict NAME SECONDS: waits for the background check's verdict, if one runs.
ts_wait_verdict() {
    grep -q 'checked in the background' "$TMP/$1.log" || grep -q 'checking the whole of' "$TMP/$1.log" || return 0
    for _ in $(seq 1 $(($2 * 10))); do
        grep -qE 'whole file checked in the background|found by the background check' "$TMP/$1.log" && return 0
        sleep 0.1
    done
    die "taskserver ($1): no verdict of the background check within $2 s"
}
# stop PID: TERM to the process group (or the process), then wait.
stop() {
    signal_stop "$1"
    wait "$1" 2>/dev/null
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# nginx_start NAME WORKERS MODE [FILE]: MODE fixed (return 201 / 200), static (GET /tareas is
# FILE, sendfile on) or conns (like fixed, room for --conns connections). Sets NG_PID_NAME,
# NG_PORT_NAME.
nginx_start() {
    local name=$1 workers=$2 mode=$3 file=${4:-} ng="$TMP/nginx-$1" port pid wc=1024 tareas
    rm -rf "$ng"
    mkdir -p "$ng/logs" "$ng/tmp"
    port=$(free_port)
    [ "$mode" = conns ] && wc=$((NCONNS + 1024))
    case $mode in
    static) tareas="alias $file;" ;;
    *) tareas="return 201 '{\"id\":1,\"titulo\":\"wrk\",\"cliente\":\"bench\",\"creada\":\"2026-12-03T10:00:00Z\",\"pid\":1}\\n';" ;;
    esac
    cat >"$ng/nginx.conf" <<CONF
daemon off;
worker_processes $workers;
worker_rlimit_nofile $((wc + 1024));
pid $ng/nginx.pid;
error_log $ng/logs/error.log warn;
events { worker_connections $wc; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $ng/tmp/body;
    proxy_temp_path $ng/tmp/proxy;
    fastcgi_temp_path $ng/tmp/fastcgi;
    uwsgi_temp_path $ng/tmp/uwsgi;
    scgi_temp_path $ng/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 5s;
    default_type application/json;
    server {
        listen 127.0.0.1:$port backlog=4096;
        location = /tareas { $tareas }
        location = /health { return 200 '{"status":"ok","workers":$workers,"locking":true,"tasks":0}'; }
    }
}
CONF
    nginx -e "$ng/logs/error.log" -c "$ng/nginx.conf" -p "$ng" 2>"$TMP/nginx-$name.err" &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 50); do
        if curl -s -o /dev/null "http://127.0.0.1:$port/health"; then
            printf -v "NG_PID_$name" '%s' "$pid"
            printf -v "NG_PORT_$name" '%s' "$port"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$TMP/nginx-$name.err" "$ng/logs/error.log" >&2 2>/dev/null
    die "nginx ($name) did not start on 127.0.0.1:$port"
}
nginx_workers() { pgrep -P "$1"; }

# ---------------------------------------------------------------- clients

POST_LUA="$(cd "$(dirname "$0")" && pwd)/post.lua" # a distinct titulo per request
cat >"$TMP/getid.lua" <<'LUA'
-- GET /tareas/ID, ids uniform in 1..BENCH_MAX_ID.
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end
local max_id = tonumber(os.getenv("BENCH_MAX_ID"))
function init(args)
    math.randomseed(os.time() * 1000 + tid)
end
request = function()
    return wrk.format("GET", "/tareas/" .. math.random(1, max_id))
end
LUA

# wrk_rate LABEL URL WRK_ARGS...: prints requests/s; socket errors and non-2xx go to stderr.
wrk_rate() {
    local label=$1 url=$2 out="$TMP/wrk.out" r
    shift 2
    timeout $((SECS + 60)) wrk -d "${SECS}s" "$@" "$url" >"$out" 2>&1
    r=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    [ -n "$r" ] || { cat "$out" >&2; die "wrk failed ($label)"; }
    grep 'Socket errors\|Non-2xx' "$out" | sed "s|^ *|  $label: |" >&2
    echo "$r"
}

# strace_count OUT PID... -- COMMAND...: counts the system calls of PIDs (strace -c -f) while
# COMMAND runs; the table goes to OUT.
strace_count() {
    local out=$1 args=() sp
    shift
    while [ "$1" != -- ]; do args+=(-p "$1"); shift; done
    shift
    strace -c -f -o "$out" "${args[@]}" 2>"$out.err" &
    sp=$!
    for _ in $(seq 1 50); do
        [ "$(grep -c 'attached' "$out.err")" -ge $((${#args[@]} / 2)) ] && break
        sleep 0.1
    done
    "$@"
    kill -INT "$sp" 2>/dev/null
    wait "$sp" 2>/dev/null
}
# calls OUT SYSCALL: the count of SYSCALL in a strace -c table (0 when absent).
calls() { awk -v s="$2" '$NF == s && $4 ~ /^[0-9]+$/ {n = $4} END {print n + 0}' "$1"; }
# per_request OUT N: the system calls of a strace -c table divided by N requests, most first.
per_request() {
    awk -v n="$2" '$4 ~ /^[0-9]+$/ && $NF != "total" {printf "%s %.3f\n", $NF, $4 / n}' "$1" |
        sort -k2,2gr | awk '$2 >= 0.01 {printf "%s%s %s", sep, $1, $2; sep = ", "} END {print ""}'
}
# wrk_requests: the requests the last wrk_rate completed.
wrk_requests() { awk '/requests in/ {print $1}' "$TMP/wrk.out"; }
# cpu_ns PID...: CPU time so far of the processes, all their threads (/proc/PID/task/*/schedstat).
cpu_ns() {
    local p
    for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done | awk '{n += $1} END {printf "%.0f", n}'
}
# rate_cpu LABEL URL PIDS WRK_ARGS...: "RATE CPU_US": requests/s, and the CPU time the server
# processes PIDS (a space-separated list) spent per request. CPU per request does not depend on
# how much of the machine other work takes, only on what each request costs.
rate_cpu() {
    local label=$1 url=$2 pids=$3 c0 c1 r
    shift 3
    c0=$(cpu_ns $pids)
    r=$(wrk_rate "$label" "$url" "$@") || exit 1
    c1=$(cpu_ns $pids)
    echo "$r $(awk -v a="$c0" -v b="$c1" -v n="$(wrk_requests)" 'BEGIN {printf "%.2f", (b - a) / n / 1000}')"
}

# ---------------------------------------------------------------- the task files

# make_file N PATH: a canonical file of N tasks (about 110 bytes each), made once and kept.
make_file() {
    local n=$1 path=$2
    if [ -f "$path" ] && [ "$(cat "$path.ok" 2>/dev/null)" = "$n $(stat -c %s "$path")" ]; then
        return 0
    fi
    mkdir -p "$CACHE" || die "cannot make $CACHE"
    if [ "$n" -ge 1000000 ]; then
        local avail need=$((5 * 1024 * 1024)) # KiB
        avail=$(df -Pk "$CACHE" | awk 'NR == 2 {print $4}')
        [ "${avail:-0}" -ge "$need" ] ||
            die "$CACHE: $((avail / 1024)) MiB free, fewer than 5 GB: refusing to write the $n-task file (use --cache DIR elsewhere)"
    fi
    echo "making $path ($n tasks, once; reused by later runs, --remove-cache deletes it)"
    rm -f "$path" "$path.ok"
    python3 - "$n" "$path.tmp" <<'PY' || die "cannot write $path"
import os, sys
n, path = int(sys.argv[1]), sys.argv[2]
rec = ('{"id":%d,"titulo":"tarea de prueba numero %d","cliente":"bench-gen",'
       '"creada":"2026-12-03T10:00:00Z","pid":4242}')
with open(path, "w") as f:
    f.write("[\n")
    step = 100000
    for lo in range(1, n + 1, step):
        hi = min(n, lo + step - 1)
        f.write(",\n".join(rec % (i, i) for i in range(lo, hi + 1)))
        f.write(",\n" if hi < n else "\n")
    f.write("]\n")
    f.flush()
    os.fdatasync(f.fileno())
PY
    mv "$path.tmp" "$path" || die "mv $path.tmp $path"
    echo "$n $(stat -c %s "$path")" >"$path.ok"
}
# unchanged PATH: the servers only read the cached files; a changed one is dropped from the cache.
unchanged() {
    [ "$(cat "$1.ok")" = "$(grep -c '^{"id":' "$1" 2>/dev/null) $(stat -c %s "$1")" ] && return 0
    rm -f "$1.ok"
    die "$1 was changed by the run: removed from the cache, made anew next time"
}
# evict PATH: drops the file's pages from the page cache (posix_fadvise, this file only).
evict() {
    python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fdatasync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$1"
}

# ---------------------------------------------------------------- sections

post_section() {
    local w r tp np ratios
    for w in 2 4; do
        section "POST /tareas, $w workers: taskserver vs nginx return 201, wrk -t 2 -c $CONNS -d ${SECS}s"
        rm -f "$TMP/post.json"
        ts_start post "$TMP/post.json" "$w" --quiet
        nginx_start post "$w" fixed
        local tsw ngw a b tc nc cratios=()
        tsw=$(ts_workers post | tr '\n' ' ') ngw=$(nginx_workers "$NG_PID_post" | tr '\n' ' ')
        ratios=()
        for r in $(seq 1 "$ROUNDS"); do
            if [ $((r % 2)) -eq 1 ]; then
                a=$(rate_cpu "taskserver POST" "http://127.0.0.1:$TS_PORT_post/tareas" "$tsw" -t 2 -c "$CONNS" -s "$POST_LUA") || exit 1
                b=$(rate_cpu "nginx POST" "http://127.0.0.1:$NG_PORT_post/tareas" "$ngw" -t 2 -c "$CONNS" -s "$POST_LUA") || exit 1
            else
                b=$(rate_cpu "nginx POST" "http://127.0.0.1:$NG_PORT_post/tareas" "$ngw" -t 2 -c "$CONNS" -s "$POST_LUA") || exit 1
                a=$(rate_cpu "taskserver POST" "http://127.0.0.1:$TS_PORT_post/tareas" "$tsw" -t 2 -c "$CONNS" -s "$POST_LUA") || exit 1
            fi
            read -r tp tc <<<"$a"
            read -r np nc <<<"$b"
            ratios+=("$(div "$tp" "$np")")
            cratios+=("$(div "$nc" "$tc")")
            echo "round $r: taskserver $tp req/s ($tc us CPU/request), nginx $np req/s ($nc us CPU/request), ratio ${ratios[-1]}, CPU ratio nginx/taskserver ${cratios[-1]} (load $(load))"
        done
        # Batching, from the server's own counters over all rounds.
        local m appends holds
        m=$(curl -s "http://127.0.0.1:$TS_PORT_post/metrics")
        appends=$(awk '$1 == "taskserver_appends_total" {print $2}' <<<"$m")
        holds=$(awk '$1 ~ /^taskserver_lock_hold_seconds_count\{lock="write"\}/ {print $2}' <<<"$m")
        echo "stored $(grep -c '^{"id":' "$TMP/post.json") tasks; $appends appends in $holds write-lock holds ($(div "$appends" "$holds") tasks per hold)"
        # System calls per request of each server's workers (strace -c: not timed, it slows them).
        local ws
        mapfile -t ws < <(ts_workers post)
        strace_count "$TMP/post.strace" "${ws[@]}" -- wrk_rate strace "http://127.0.0.1:$TS_PORT_post/tareas" -t 2 -c "$CONNS" -s "$POST_LUA" >/dev/null
        echo "taskserver system calls per POST (strace -c, $(wrk_requests) requests): $(per_request "$TMP/post.strace" "$(wrk_requests)")"
        mapfile -t ws < <(nginx_workers "$NG_PID_post")
        strace_count "$TMP/post.strace" "${ws[@]}" -- wrk_rate strace "http://127.0.0.1:$NG_PORT_post/tareas" -t 2 -c "$CONNS" -s "$POST_LUA" >/dev/null
        echo "nginx system calls per POST (strace -c, $(wrk_requests) requests): $(per_request "$TMP/post.strace" "$(wrk_requests)")"
        stop "$TS_PID_post"
        stop "$NG_PID_post"
        record "POST /tareas vs nginx, $w workers" ">=" 0.9 "${ratios[@]}"
        record "  CPU per POST, nginx/taskserver, $w workers" "info" "-" "${cratios[@]}"
    done
}

# redis_rate N: RPUSH requests/s from redis-benchmark -n N.
redis_rate() {
    local out="$TMP/redis-bench.out" r
    timeout $((SECS * 10 + 60)) redis-benchmark -h 127.0.0.1 -p "$RD_PORT" -c "$CONNS" --threads 2 \
        -n "$1" -d 90 -t rpush --csv >"$out" 2>&1
    r=$(awk -F'"' '$2 == "RPUSH" {print $4}' "$out")
    [ -n "$r" ] || { cat "$out" >&2; die "redis-benchmark failed"; }
    echo "$r"
}

durable_section() {
    section "durable POST: taskserver --fsync vs redis-server appendfsync always (RPUSH), $CONNS connections"
    mkdir -p "$TMP/redis"
    echo "data directory for both: $TMP ($(df -PT "$TMP" | awk 'NR == 2 {print $2 " on " $1}'))"
    RD_PORT=$(free_port)
    redis-server --port "$RD_PORT" --bind 127.0.0.1 --dir "$TMP/redis" --appendonly yes \
        --appendfsync always --save '' --daemonize no --logfile "$TMP/redis.log" &
    RD_PID=$!
    PIDS+=("$RD_PID")
    for _ in $(seq 1 50); do
        redis-cli -h 127.0.0.1 -p "$RD_PORT" ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
    redis-cli -h 127.0.0.1 -p "$RD_PORT" ping 2>/dev/null | grep -q PONG || { cat "$TMP/redis.log" >&2; die "redis-server did not start"; }
    echo "redis: $(redis-cli -h 127.0.0.1 -p "$RD_PORT" config get appendfsync | tr '\n' ' ')," \
        "redis-benchmark -c $CONNS --threads 2 -t rpush -d 90 (one list, like one file)"
    # redis-benchmark runs a count, not a time: each round's count is the last rate times SECS.
    local rr rc n w tsw a tp tc c0 r ratios cratios
    rr=$(redis_rate 2000) || exit 1
    for w in 2 1; do
        echo "-- taskserver --fsync with $w worker(s)"
        rm -f "$TMP/durable.json"
        ts_start durable "$TMP/durable.json" "$w" --quiet --fsync
        tsw=$(ts_workers durable | tr '\n' ' ')
        ratios=() cratios=()
        for r in $(seq 1 "$ROUNDS"); do
            n=$(awk -v r="$rr" -v s="$SECS" 'BEGIN {n = int(r * s); if (n < 2000) n = 2000; if (n > 2000000) n = 2000000; print n}')
            if [ $((r % 2)) -eq 1 ]; then
                a=$(rate_cpu "taskserver --fsync POST" "http://127.0.0.1:$TS_PORT_durable/tareas" "$tsw" -t 2 -c "$CONNS" -s "$POST_LUA") || exit 1
                c0=$(cpu_ns "$RD_PID")
                rr=$(redis_rate "$n") || exit 1
                rc=$(awk -v a="$c0" -v b="$(cpu_ns "$RD_PID")" -v n="$n" 'BEGIN {printf "%.2f", (b - a) / n / 1000}')
            else
                c0=$(cpu_ns "$RD_PID")
                rr=$(redis_rate "$n") || exit 1
                rc=$(awk -v a="$c0" -v b="$(cpu_ns "$RD_PID")" -v n="$n" 'BEGIN {printf "%.2f", (b - a) / n / 1000}')
                a=$(rate_cpu "taskserver --fsync POST" "http://127.0.0.1:$TS_PORT_durable/tareas" "$tsw" -t 2 -c "$CONNS" -s "$POST_LUA") || exit 1
            fi
            read -r tp tc <<<"$a"
            ratios+=("$(div "$tp" "$rr")")
            cratios+=("$(div "$rc" "$tc")")
            echo "round $r: taskserver --fsync $tp req/s ($tc us CPU/request), redis RPUSH $rr req/s ($rc us CPU/request, $n requests), ratio ${ratios[-1]} (load $(load))"
        done
        # Group commit, from the server's own counters over all rounds.
        local m appends holds syncs sync_s
        m=$(curl -s "http://127.0.0.1:$TS_PORT_durable/metrics")
        appends=$(awk '$1 == "taskserver_appends_total" {print $2}' <<<"$m")
        holds=$(awk '$1 ~ /^taskserver_lock_hold_seconds_count\{lock="write"\}/ {print $2}' <<<"$m")
        syncs=$(awk '$1 == "taskserver_fsync_seconds_count" {print $2}' <<<"$m")
        sync_s=$(awk '$1 == "taskserver_fsync_seconds_sum" {print $2}' <<<"$m")
        echo "taskserver over all rounds: $appends tasks, $holds write-lock holds, $syncs fdatasync calls:" \
            "$(div "$appends" "$syncs") tasks per fdatasync, $(div "$appends" "$holds") tasks per hold;" \
            "mean fdatasync $(awk -v s="$sync_s" -v c="$syncs" 'BEGIN {printf "%.3f", s / c * 1000}') ms," \
            "fdatasync busy $(awk -v s="$sync_s" -v t="$((ROUNDS * SECS))" 'BEGIN {printf "%.2f", s / t}') s per second of load (above 1: syncs of several workers overlap)"
        if [ "$w" = 2 ]; then
            local ws
            read -r -a ws <<<"$tsw"
            strace_count "$TMP/durable.strace" "${ws[@]}" -- wrk_rate "strace" "http://127.0.0.1:$TS_PORT_durable/tareas" -t 2 -c "$CONNS" -s "$POST_LUA" >/dev/null
            echo "taskserver --fsync system calls per POST (strace -c, $(wrk_requests) requests, slowed by strace): $(per_request "$TMP/durable.strace" "$(wrk_requests)")"
            record "durable POST vs redis RPUSH (2 workers)" ">=" 1.0 "${ratios[@]}"
        else
            record "durable POST vs redis RPUSH, 1 worker" "info" "-" "${ratios[@]}"
        fi
        record "  CPU per request, redis/taskserver, $w worker(s)" "info" "-" "${cratios[@]}"
        stop "$TS_PID_durable"
    done
    # Redis's syncs per request: strace on a fixed count (strace slows it: the batches grow).
    local nr=20000
    strace_count "$TMP/redis.strace" "$RD_PID" -- redis_rate "$nr" >/dev/null
    echo "redis system calls per RPUSH (strace -c, $nr requests, slowed by strace): $(per_request "$TMP/redis.strace" "$nr")"
    stop "$RD_PID"
}

getid_section() {
    make_file 10000000 "$CACHE/10m.json"
    make_file 1000 "$CACHE/1k.json"
    section "GET /tareas/ID, random ids: 10M-task file vs 1k-task file, 2 workers each, wrk -t 2 -c $CONNS -d ${SECS}s"
    ts_start big "$CACHE/10m.json" 2 --quiet
    ts_start small "$CACHE/1k.json" 2 --quiet
    ts_wait_verdict big 300 # the background check would compete for the CPUs
    local r a c bw sw b bc sm sc ratios=() cratios=()
    bw=$(ts_workers big | tr '\n' ' ') sw=$(ts_workers small | tr '\n' ' ')
    for r in $(seq 1 "$ROUNDS"); do
        if [ $((r % 2)) -eq 1 ]; then
            a=$(BENCH_MAX_ID=10000000 rate_cpu "10M GET/ID" "http://127.0.0.1:$TS_PORT_big" "$bw" -t 2 -c "$CONNS" -s "$TMP/getid.lua") || exit 1
            c=$(BENCH_MAX_ID=1000 rate_cpu "1k GET/ID" "http://127.0.0.1:$TS_PORT_small" "$sw" -t 2 -c "$CONNS" -s "$TMP/getid.lua") || exit 1
        else
            c=$(BENCH_MAX_ID=1000 rate_cpu "1k GET/ID" "http://127.0.0.1:$TS_PORT_small" "$sw" -t 2 -c "$CONNS" -s "$TMP/getid.lua") || exit 1
            a=$(BENCH_MAX_ID=10000000 rate_cpu "10M GET/ID" "http://127.0.0.1:$TS_PORT_big" "$bw" -t 2 -c "$CONNS" -s "$TMP/getid.lua") || exit 1
        fi
        read -r b bc <<<"$a"
        read -r sm sc <<<"$c"
        ratios+=("$(div "$b" "$sm")")
        cratios+=("$(div "$sc" "$bc")")
        echo "round $r: 10M $b req/s ($bc us CPU/lookup), 1k $sm req/s ($sc us CPU/lookup), ratio ${ratios[-1]}, CPU ratio 1k/10M ${cratios[-1]} (load $(load))"
    done
    # preads per lookup: strace -c on both workers while wrk -c 1 runs 3 s; the lookups are
    # wrk's completed requests (the responses sent are printed as a cross-check).
    local name max ws p sends done_n
    for name in big small; do
        [ "$name" = big ] && max=10000000 || max=1000
        mapfile -t ws < <(ts_workers "$name")
        local port_var=TS_PORT_$name
        BENCH_MAX_ID=$max strace_count "$TMP/getid-$name.strace" "${ws[@]}" -- \
            timeout 60 wrk -t 1 -c 1 -d 3s -s "$TMP/getid.lua" "http://127.0.0.1:${!port_var}" >"$TMP/wrk-count.out" 2>&1
        done_n=$(awk '/requests in/ {print $1}' "$TMP/wrk-count.out")
        [ -n "$done_n" ] && [ "$done_n" -gt 0 ] || { cat "$TMP/wrk-count.out" >&2; die "wrk under strace failed ($name)"; }
        p=$(calls "$TMP/getid-$name.strace" pread64)
        sends=$(($(calls "$TMP/getid-$name.strace" sendmsg) + $(calls "$TMP/getid-$name.strace" sendto)))
        echo "$name file: $done_n lookups (wrk), $sends responses sent (sendmsg + sendto), $p pread64: $(div "$p" "$done_n") preads per lookup"
        echo "  system calls per lookup: $(per_request "$TMP/getid-$name.strace" "$done_n")"
        [ "$name" = big ] && GETID_PREADS=$(div "$p" "$done_n") || GETID_PREADS_SMALL=$(div "$p" "$done_n")
    done
    stop "$TS_PID_big"
    stop "$TS_PID_small"
    unchanged "$CACHE/10m.json"
    unchanged "$CACHE/1k.json"
    record "GET /tareas/ID 10M vs 1k" ">=" 0.9 "${ratios[@]}"
    record "  CPU per lookup, 1k/10M" "info" "-" "${cratios[@]}"
    record "  preads per GET /tareas/ID, 10M file (strace)" "info" "-" "$GETID_PREADS"
    record "  preads per GET /tareas/ID, 1k file (strace)" "info" "-" "$GETID_PREADS_SMALL"
}

# startup_time FILE LOG: starts taskserver on FILE with a fixed port, prints
# "LISTEN ANSWER VERDICT" in seconds from the exec: first accepted connect, first /health answer,
# the background check's verdict ("-" when the file is checked whole before listening).
startup_time() {
    python3 - "$TS" "$1" "$2" "$(free_port)" <<'PY'
import os, re, signal, socket, subprocess, sys, time
ts, path, log, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(log, "w") as errf:
    t0 = time.monotonic()
    p = subprocess.Popen([ts, "--port", str(port), "--bind", "127.0.0.1", "--workers", "2",
                          "--file", path, "--quiet"], stderr=errf, start_new_session=True)
    listen = answer = verdict = None
    deadline = t0 + 300
    try:
        while listen is None and time.monotonic() < deadline and p.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                listen = time.monotonic() - t0
            except OSError:
                time.sleep(0.002)
        while answer is None and listen is not None and time.monotonic() < deadline:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 "):
                    answer = time.monotonic() - t0
                s.close()
            except OSError:
                time.sleep(0.002)
        background = False
        while verdict is None and time.monotonic() < deadline and p.poll() is None:
            text = open(log).read()
            if "checking the whole of" in text:
                background = True
            if re.search(r"whole file checked in the background|found by the background check", text):
                verdict = time.monotonic() - t0
            elif not background and "started worker" in text:
                break
            time.sleep(0.01)
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=30)
    fmt = lambda v: "%.3f" % v if v is not None else "-"
    print(fmt(listen), fmt(answer), fmt(verdict))
PY
}

startup_section() {
    make_file 10000000 "$CACHE/10m.json"
    make_file 1000 "$CACHE/1k.json"
    section "start-up to listening: 10M-task file ($(($(stat -c %s "$CACHE/10m.json") / 1000000)) MB) vs 1k-task file, 2 workers"
    local r bl ba bv sl sa cl ca cv big=() ratios=() cold=() verd=() cverd=()
    for r in $(seq 1 "$ROUNDS"); do
        if [ $((r % 2)) -eq 1 ]; then
            read -r bl ba bv < <(startup_time "$CACHE/10m.json" "$TMP/startup.log")
            read -r sl sa _ < <(startup_time "$CACHE/1k.json" "$TMP/startup.log")
        else
            read -r sl sa _ < <(startup_time "$CACHE/1k.json" "$TMP/startup.log")
            read -r bl ba bv < <(startup_time "$CACHE/10m.json" "$TMP/startup.log")
        fi
        evict "$CACHE/10m.json"
        read -r cl ca cv < <(startup_time "$CACHE/10m.json" "$TMP/startup.log")
        [ -n "${bl:-}" ] && [ -n "${sl:-}" ] && [ "$bl" != - ] && [ "$sl" != - ] || die "a start-up did not listen (log: $(tail -3 "$TMP/startup.log"))"
        big+=("$bl") cold+=("$cl") verd+=("$bv") cverd+=("$cv")
        ratios+=("$(div "$bl" "$sl")")
        echo "round $r: 10M listening after ${bl} s (first answer ${ba} s, verdict ${bv} s); 1k ${sl} s (answer ${sa} s);" \
            "10M with the file out of the page cache: ${cl} s (answer ${ca} s, verdict ${cv} s) (load $(load))"
    done
    unchanged "$CACHE/10m.json"
    record "start-up to listening, 10M file (s)" "<" 0.5 "${big[@]}"
    record "  start-up 10M / start-up 1k" "info" "-" "${ratios[@]}"
    record "  start-up, 10M file out of page cache (s)" "<" 0.5 "${cold[@]}"
    record "  background check verdict, 10M file (s)" "info" "-" "${verd[@]}"
    record "  verdict, 10M file out of page cache (s)" "info" "-" "${cverd[@]}"
}

# hold_run NAME PORT: raw_http hold with NCONNS connections, one GET /health on each; prints
# "answered200 refused503 other none spread" (spread: established connections per server process,
# seen with ss while the connections are held).
hold_run() {
    local name=$1 port=$2 out="$TMP/hold-$1.out" hp spread="" best=0 c
    "$RAW" hold -p "$port" -n "$NCONNS" -d 20000 -s 'GET /health HTTP/1.1\r\nHost: bench\r\n\r\n' \
        >"$out" 2>"$out.err" &
    hp=$!
    for _ in $(seq 1 60); do
        kill -0 "$hp" 2>/dev/null || break
        ss -Htnp state established "( sport = :$port )" >"$TMP/ss.out" 2>/dev/null
        c=$(wc -l <"$TMP/ss.out")
        if [ "$c" -gt "$best" ]; then
            best=$c
            spread=$(grep -o 'pid=[0-9]*' "$TMP/ss.out" | sort | uniq -c | awk '{printf "%s%s", sep, $1; sep = "+"}')
        fi
        [ "$c" -ge "$NCONNS" ] && break
        sleep 0.5
    done
    wait "$hp"
    local line ok refused answered connected
    line=$(tail -1 "$out")
    connected=$(sed -n 's/.*connected=\([0-9]*\).*/\1/p' <<<"$line")
    answered=$(sed -n 's/.*answered=\([0-9]*\).*/\1/p' <<<"$line")
    ok=$(grep -o '200:[0-9]*' <<<"$line" | cut -d: -f2)
    refused=$(grep -o '503:[0-9]*' <<<"$line" | cut -d: -f2)
    [ -n "$connected" ] || { cat "$out" "$out.err" >&2; die "raw_http hold failed ($name)"; }
    echo "${ok:-0} ${refused:-0} $((answered - ${ok:-0} - ${refused:-0})) $((NCONNS - answered)) ${spread:-?}/$best"
}

conns_section() {
    section "$NCONNS keep-alive connections, 2 workers, default flags: one GET /health on each"
    local hard soft
    # Room for both ends of every connection (client and servers run under this limit).
    if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt $((NCONNS * 2 + 4096)) ]; then
        ulimit -Hn $((NCONNS * 2 + 4096)) 2>"$TMP/ulimit.err" ||
            echo "cannot raise the hard open file limit to $((NCONNS * 2 + 4096)): $(sed 's/.*: //' "$TMP/ulimit.err"); keeping $(ulimit -Hn)"
    fi
    ulimit -Sn "$(ulimit -Hn)" 2>/dev/null
    hard=$(ulimit -Hn) soft=$(ulimit -Sn)
    echo "open file limit for the servers and the client: soft $soft, hard $hard"
    [ "$soft" -ge $((NCONNS + 100)) ] ||
        echo "WARNING: cannot raise ulimit -n to $((NCONNS + 100)) (soft $soft, hard $hard): the client and the servers run short of descriptors"
    echo "somaxconn $(cat /proc/sys/net/core/somaxconn), local ports $(tr '\t' - </proc/sys/net/ipv4/ip_local_port_range)"
    local r t n ts_refused=() ts_none=()
    for r in $(seq 1 "$ROUNDS"); do
        rm -f "$TMP/conns.json"
        if [ $((r % 2)) -eq 1 ]; then order="ts ng"; else order="ng ts"; fi
        for who in $order; do
            if [ "$who" = ts ]; then
                ts_start conns "$TMP/conns.json" 2
                read -r t200 t503 tother tnone tspread < <(hold_run taskserver "$TS_PORT_conns")
                grep -m1 'connections per worker' "$TMP/conns.log" | sed 's/^[^ ]* [^ ]* /  taskserver: /'
                stop "$TS_PID_conns"
            else
                nginx_start conns 2 conns
                read -r n200 n503 nother nnone nspread < <(hold_run nginx "$NG_PORT_conns")
                stop "$NG_PID_conns"
            fi
        done
        ts_refused+=("$t503") ts_none+=("$((tother + tnone))")
        echo "round $r: taskserver 200:$t200 503:$t503 other:$tother none:$tnone (per process: $tspread);" \
            "nginx 200:$n200 503:$n503 other:$nother none:$nnone (per process: $nspread) (load $(load))"
    done
    record "$NCONNS keep-alive connections: refused (503)" "=" 0 "${ts_refused[@]}"
    record "$NCONNS keep-alive connections: unanswered or other" "=" 0 "${ts_none[@]}"
}

# hwm_kb PID...: the largest peak resident set (VmHWM, KiB) among PIDs.
hwm_kb() {
    local p m=0 v
    for p in "$@"; do
        v=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null)
        [ -n "$v" ] && [ "$v" -gt "$m" ] && m=$v
    done
    echo "$m"
}

list_section() {
    make_file 1000000 "$CACHE/1m.json"
    local lc=4
    section "GET /tareas, 1M-task file ($(($(stat -c %s "$CACHE/1m.json") / 1000000)) MB): taskserver vs nginx static (sendfile on), 2 workers, wrk -t 2 -c $lc -d ${SECS}s"
    ts_start list "$CACHE/1m.json" 2 --quiet
    nginx_start list 2 static "$CACHE/1m.json"
    ts_wait_verdict list 120
    local tb nb
    tb=$(curl -s --max-time 60 "http://127.0.0.1:$TS_PORT_list/tareas" | wc -c)
    nb=$(curl -s --max-time 60 "http://127.0.0.1:$NG_PORT_list/tareas" | wc -c)
    echo "body bytes: taskserver $tb, nginx $nb"
    [ "$tb" = "$nb" ] && [ "$tb" -gt 0 ] || die "GET /tareas: the two bodies differ in length: not the same work"
    local r a b t tc n nc tw nw ratios=() cratios=()
    tw=$(ts_workers list | tr '\n' ' ') nw=$(nginx_workers "$NG_PID_list" | tr '\n' ' ')
    for r in $(seq 1 "$ROUNDS"); do
        if [ $((r % 2)) -eq 1 ]; then
            a=$(rate_cpu "taskserver GET /tareas" "http://127.0.0.1:$TS_PORT_list/tareas" "$tw" -t 2 -c "$lc" --timeout 30s) || exit 1
            b=$(rate_cpu "nginx GET /tareas" "http://127.0.0.1:$NG_PORT_list/tareas" "$nw" -t 2 -c "$lc" --timeout 30s) || exit 1
        else
            b=$(rate_cpu "nginx GET /tareas" "http://127.0.0.1:$NG_PORT_list/tareas" "$nw" -t 2 -c "$lc" --timeout 30s) || exit 1
            a=$(rate_cpu "taskserver GET /tareas" "http://127.0.0.1:$TS_PORT_list/tareas" "$tw" -t 2 -c "$lc" --timeout 30s) || exit 1
        fi
        read -r t tc <<<"$a"
        read -r n nc <<<"$b"
        ratios+=("$(div "$t" "$n")")
        cratios+=("$(div "$nc" "$tc")")
        echo "round $r: taskserver $t req/s ($tc us CPU/request), nginx $n req/s ($nc us CPU/request), ratio ${ratios[-1]}, CPU ratio nginx/taskserver ${cratios[-1]} (load $(load))"
    done
    LIST_TS_RSS=$(hwm_kb $tw)
    LIST_NG_RSS=$(hwm_kb $nw)
    echo "peak RSS of a worker (VmHWM): taskserver $LIST_TS_RSS KiB (master $(hwm_kb "$TS_PID_list") KiB), nginx $LIST_NG_RSS KiB"
    stop "$TS_PID_list"
    stop "$NG_PID_list"
    unchanged "$CACHE/1m.json"
    record "GET /tareas 1M vs nginx sendfile" ">=" 0.9 "${ratios[@]}"
    record "  CPU per GET /tareas, nginx/taskserver" "info" "-" "${cratios[@]}"
    record "  GET /tareas 1M: taskserver worker peak RSS (KiB)" "info" "-" "$LIST_TS_RSS"
    record "  GET /tareas 1M: nginx worker peak RSS (KiB)" "info" "-" "$LIST_NG_RSS"
}

# ---------------------------------------------------------------- main

echo "$ME: $("$TS" --version 2>&1 | head -1); commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)"
echo "$(uname -srm), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%M:%SZ), load average $(load)"
echo "rounds $ROUNDS, wrk runs of ${SECS}s, $CONNS connections, sections $ONLY, cache $CACHE"
[ "$ROUNDS" -ge 3 ] || echo "note: fewer than 3 rounds: a smoke run, not a measurement"
echo "peers: $(nginx -v 2>&1), $(redis-server --version | cut -d' ' -f1-3), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
START=$(date +%s)
want post && post_section
want durable && durable_section
want getid && getid_section
want startup && startup_section
want conns && conns_section
want list && list_section

printf '\n== summary (%s s, load average at the end %s)\n' "$(($(date +%s) - START))" "$(load)"
printf '%-58s %9s %9s %9s %6s %8s %s\n' measurement median min max rounds goal "met (median)"
for row in "${RESULTS[@]}"; do
    IFS='|' read -r l med min max n goal met <<<"$row"
    printf '%-58s %9s %9s %9s %6s %8s %s\n' "$l" "$med" "$min" "$max" "$n" "$goal" "$met"
done
