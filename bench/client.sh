#!/usr/bin/env bash
# bench/client.sh - clientemulator's request rate against wrk's, same server, same connections.
#
#   bench/client.sh [BUILD_DIR] [CONNECTIONS] [TASKS] [REPEATS]     (defaults: build 50 20000 3)
#
# Starts the locked taskserver (4 workers, fresh file on /tmp) once, then alternates REPEATS
# times: clientemulator --tasks TASKS --concurrency CONNECTIONS, and wrk -c CONNECTIONS for about
# as long, POSTing the same task body (bench/wrk_post.lua written here). Prints each rate, the
# medians and the ratio clientemulator/wrk (the goal is >= 0.7). Not a test: numbers vary.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ME=bench/client.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_options "$@"
BUILD=${1:-$ROOT/build}
CONNS=${2:-50}
TASKS=${3:-20000}
REPEATS=${4:-3}
bench_build_dir "$BUILD"
command -v wrk >/dev/null || { echo "$ME: wrk not found (apt-get install wrk)" >&2; exit 1; }
for p in taskserver clientemulator; do
    [ -x "$BUILD/src/$p" ] || { echo "$ME: $BUILD/src/$p: not built" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/bench-client.XXXXXX)
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill -TERM -- "-$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$TMP/wrk_post.lua" <<'LUA'
-- POST /tareas with the body clientemulator sends; seq counts per wrk thread.
local n = 0
request = function()
    n = n + 1
    local body = string.format('{"titulo":"wrk-%d","cliente":"wrk","seq":%d}', n, n)
    return wrk.format("POST", "/tareas", {["Content-Type"] = "application/json"}, body)
end
LUA

setsid "$BUILD/src/taskserver" --port 0 --bind 127.0.0.1 --workers 4 --file "$TMP/tasks.json" \
    --quiet 2>"$TMP/server.err" &
SERVER_PID=$!
for _ in $(seq 1 100); do
    PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$TMP/server.err")
    [ -n "$PORT" ] && break
    sleep 0.1
done
[ -n "${PORT:-}" ] || { cat "$TMP/server.err" >&2; echo "bench/client.sh: server did not start" >&2; exit 1; }
URL=http://127.0.0.1:$PORT

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ce_rates=()
wrk_rates=()
for r in $(seq 1 "$REPEATS"); do
    "$BUILD/src/clientemulator" --url "$URL" --id "bench$r" --tasks "$TASKS" \
        --concurrency "$CONNS" --quiet --json >"$TMP/ce.json"
    # Exit 1 (some requests failed) still measured a rate; no JSON means it could not run.
    ce=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests_per_s"])' \
        "$TMP/ce.json") || { echo "bench/client.sh: clientemulator failed" >&2; exit 1; }
    failed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["failed"])' "$TMP/ce.json")
    [ "$failed" = 0 ] || echo "round $r: clientemulator: $failed requests failed (see --json errors)"
    secs=$(python3 -c 'import json,sys; print(max(2, round(json.load(open(sys.argv[1]))["elapsed_s"])))' "$TMP/ce.json")
    wrk -t 2 -c "$CONNS" -d "${secs}s" -s "$TMP/wrk_post.lua" "$URL" >"$TMP/wrk.out" 2>&1
    w=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk.out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$TMP/wrk.out")
    [ -n "$w" ] || { cat "$TMP/wrk.out" >&2; echo "bench/client.sh: wrk failed" >&2; exit 1; }
    echo "round $r: clientemulator $ce req/s ($TASKS tasks), wrk $w req/s (${secs}s${non2xx:+, non-2xx $non2xx})"
    ce_rates+=("$ce")
    wrk_rates+=("$w")
done
ce_med=$(printf '%s\n' "${ce_rates[@]}" | median)
wrk_med=$(printf '%s\n' "${wrk_rates[@]}" | median)
ratio=$(awk -v a="$ce_med" -v b="$wrk_med" 'BEGIN {printf "%.2f", a / b}')
echo "connections $CONNS, 4 workers, locked build: clientemulator median $ce_med req/s," \
    "wrk median $wrk_med req/s, ratio $ratio (goal >= 0.7)"
