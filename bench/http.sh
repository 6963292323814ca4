#!/usr/bin/env bash
# bench/http.sh - taskserver's HTTP rates against nginx's fixed responses, same machine, same run.
#
#   bench/http.sh [BUILD_DIR] [SECONDS] [REPEATS] [CONNECTIONS]   (defaults: build 5 3 32)
#
# For 2 and then 4 workers: starts the locked taskserver (--quiet, a fresh tasks.json in a temp
# dir) and nginx (worker_processes the same, its own config in the temp dir: POST /tareas
# answers `return 201` with a small JSON body, GET /health `return 200`, access_log off), both
# on 127.0.0.1. Then REPEATS rounds of wrk -c CONNECTIONS -d SECONDS, alternating the two
# servers: POST /tareas (a Lua script, a distinct titulo per request) and GET /health. Prints
# every rate, the medians and the ratios taskserver/nginx (goals: POST >= 0.9 since issue 15, GET >= 0.8;
# bench/peers.sh gives the POST figure as per-round ratios with their range).
# Socket errors or non-2xx answers are printed: they are bugs, not noise. Not a test: the
# figures vary with the machine's load; everything stays on 127.0.0.1.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ME=bench/http.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_options "$@"
BUILD=${1:-$ROOT/build}
SECS=${2:-5}
REPEATS=${3:-3}
CONNS=${4:-32}
bench_build_dir "$BUILD"

for t in wrk nginx; do
    command -v "$t" >/dev/null || { echo "$ME: $t not found (apt-get install $t)" >&2; exit 1; }
done
[ -x "$BUILD/src/taskserver" ] || { echo "$ME: $BUILD/src/taskserver: not built" >&2; exit 1; }
case $("$BUILD/src/taskserver" --version 2>&1) in
*"locking on"*) ;;
*) echo "$ME: $BUILD/src/taskserver is not a locking build (meson -Dlocking=true)" >&2; exit 1 ;;
esac
for v in "$SECS" "$REPEATS" "$CONNS"; do
    case $v in '' | *[!0-9]* | 0) echo "$ME: SECONDS, REPEATS, CONNECTIONS: positive integers" >&2; exit 2 ;; esac
done
[ "$SECS" -le 60 ] && [ "$REPEATS" -le 20 ] || { echo "$ME: at most 60 s and 20 rounds" >&2; exit 2; }

TMP=$(mktemp -d /tmp/bench-http.XXXXXX)
SERVER_PID=""
NGINX_PID=""
stop_taskserver() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM -- "-$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        SERVER_PID=""
    fi
}
stop_nginx() {
    if [ -n "$NGINX_PID" ]; then
        kill -TERM "$NGINX_PID" 2>/dev/null # fast shutdown; the master stops its workers
        wait "$NGINX_PID" 2>/dev/null
        NGINX_PID=""
    fi
}
cleanup() {
    stop_taskserver
    stop_nginx
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

POST_LUA="$(cd "$(dirname "$0")" && pwd)/post.lua" # a distinct titulo per request

# Waits for "listening on 127.0.0.1:PORT" in $1; prints PORT.
wait_port() {
    local port=""
    for _ in $(seq 1 100); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$1")
        [ -n "$port" ] && break
        sleep 0.1
    done
    echo "$port"
}

start_taskserver() { # WORKERS
    rm -f "$TMP/tasks.json"
    setsid "$BUILD/src/taskserver" --port 0 --bind 127.0.0.1 --workers "$1" \
        --file "$TMP/tasks.json" --quiet 2>"$TMP/taskserver.err" &
    SERVER_PID=$!
    TS_PORT=$(wait_port "$TMP/taskserver.err")
    [ -n "$TS_PORT" ] || { cat "$TMP/taskserver.err" >&2; echo "$ME: taskserver did not start" >&2; exit 1; }
}

# A free port for nginx: bind port 0, read it, let go (a race only with other programs).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_nginx() { # WORKERS
    local ng="$TMP/nginx"
    rm -rf "$ng"
    mkdir -p "$ng/logs" "$ng/tmp"
    NG_PORT=$(free_port)
    cat >"$ng/nginx.conf" <<CONF
# The ceiling for HTTP handling on this machine: fixed answers, no disk, no logging.
daemon off;
worker_processes $1;
pid $ng/nginx.pid;
error_log $ng/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $ng/tmp/body;
    proxy_temp_path $ng/tmp/proxy;
    fastcgi_temp_path $ng/tmp/fastcgi;
    uwsgi_temp_path $ng/tmp/uwsgi;
    scgi_temp_path $ng/tmp/scgi;
    keepalive_requests 1000000;
    default_type application/json;
    server {
        listen 127.0.0.1:$NG_PORT;
        location = /tareas {
            return 201 '{"id":1,"titulo":"wrk","descripcion":"","cliente":"bench"}\n';
        }
        location = /health {
            return 200 '{"status":"ok","workers":$1,"locking":true,"tasks":0}';
        }
    }
}
CONF
    nginx -e "$ng/logs/error.log" -c "$ng/nginx.conf" -p "$ng" 2>"$TMP/nginx.err" &
    NGINX_PID=$!
    for _ in $(seq 1 50); do
        curl -s -o /dev/null "http://127.0.0.1:$NG_PORT/health" && return 0
        kill -0 "$NGINX_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$TMP/nginx.err" "$ng/logs/error.log" >&2 2>/dev/null
    echo "$ME: nginx did not start on 127.0.0.1:$NG_PORT" >&2
    exit 1
}

# run_wrk LABEL URL [SCRIPT]: prints the rate; problems go to stderr.
run_wrk() {
    local label=$1 url=$2 out="$TMP/wrk.out"
    shift 2
    timeout $((SECS + 30)) wrk -t 2 -c "$CONNS" -d "${SECS}s" "$@" "$url" >"$out" 2>&1
    local rate errs non2xx
    rate=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    errs=$(grep 'Socket errors' "$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$out")
    [ -n "$rate" ] || { cat "$out" >&2; echo "$ME: wrk failed ($label)" >&2; exit 1; }
    [ -z "$errs" ] || echo "  $label: $errs" >&2
    [ -z "$non2xx" ] || echo "  $label: $non2xx non-2xx answers" >&2
    echo "$rate"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

echo "wrk -t 2 -c $CONNS -d ${SECS}s, $REPEATS rounds, 127.0.0.1, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
summary=()
for workers in 2 4; do
    start_taskserver "$workers"
    start_nginx "$workers"
    ts_post=() ts_get=() ng_post=() ng_get=()
    for r in $(seq 1 "$REPEATS"); do
        tp=$(run_wrk "taskserver POST" "http://127.0.0.1:$TS_PORT/tareas" -s "$POST_LUA") || exit 1
        np=$(run_wrk "nginx POST" "http://127.0.0.1:$NG_PORT/tareas" -s "$POST_LUA") || exit 1
        ng=$(run_wrk "nginx GET" "http://127.0.0.1:$NG_PORT/health") || exit 1
        tg=$(run_wrk "taskserver GET" "http://127.0.0.1:$TS_PORT/health") || exit 1
        echo "$workers workers, round $r: POST /tareas taskserver $tp nginx $np req/s;" \
            "GET /health taskserver $tg nginx $ng req/s"
        ts_post+=("$tp") ts_get+=("$tg") ng_post+=("$np") ng_get+=("$ng")
    done
    stored=$(grep -c '^{"id":' "$TMP/tasks.json")
    stop_taskserver
    stop_nginx
    m_tp=$(printf '%s\n' "${ts_post[@]}" | median)
    m_np=$(printf '%s\n' "${ng_post[@]}" | median)
    m_tg=$(printf '%s\n' "${ts_get[@]}" | median)
    m_ng=$(printf '%s\n' "${ng_get[@]}" | median)
    summary+=("$workers workers: POST /tareas median taskserver $m_tp, nginx $m_np req/s, ratio $(ratio "$m_tp" "$m_np") (goal >= 0.9); GET /health median taskserver $m_tg, nginx $m_ng req/s, ratio $(ratio "$m_tg" "$m_ng") (goal >= 0.8); $stored tasks stored")
done
printf '%s\n' "${summary[@]}"
