#!/usr/bin/env bash
# bench/fastpaths.sh - is each hand-made fast path worth its code? Each one against its plain
# version, in instructions per request (callgrind: the same count on a busy machine) and in
# system calls per request (strace).
#
#   bench/fastpaths.sh [SECONDS]     (default 6 s of load per measurement)
#
# From the committed sources (git archive HEAD) it builds a reference and one variant per fast
# path, each with that path replaced by the plain code it stands for:
#   decimal   decimal_put_u64() (src/decimal.h)  -> snprintf("%" PRIu64)
#   bodies    Location and /health written by hand (src/api.c) -> snprintf / api_add_header()
#   time      the date formatter of task_json_format_time() -> gmtime_r() + strftime()
#   window    the tail read around the size hint (src/task_store_tail.c) -> fstat() + pread()
# Then one worker of each, under valgrind --tool=callgrind, takes wrk -c 1 on POST /tareas and
# on GET /health; the script prints instructions per request and the ratio variant/reference.
# For `window`, whose saving is a system call, it also counts syscalls per request with strace.
# A variant whose patch no longer applies is reported and skipped. Needs: git, meson, ninja,
# gcc, valgrind, wrk, strace, python3. Not a test; 127.0.0.1 only.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECS=${1:-6}
ME=bench/fastpaths.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_options "$@"
[ $# -le 1 ] || bench_usage_error "one argument at most, SECONDS"
case $SECS in '' | *[!0-9]* | 0) echo "$ME: SECONDS must be a positive integer" >&2; exit 2 ;; esac
for t in git meson ninja valgrind wrk strace python3 curl; do
    command -v "$t" >/dev/null || { echo "$ME: $t not found (apt-get install $t)" >&2; exit 1; }
done
TMP=$(mktemp -d /tmp/bench-fastpaths.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# patch VARIANT DIR: replaces one fast path in DIR's sources by the plain code. Exit 1 when the
# code has changed and the patch no longer applies.
patch_variant() {
    python3 - "$1" "$2" <<'PY'
import sys
v, d = sys.argv[1], sys.argv[2]
def sub(path, old, new):
    p = d + "/" + path
    s = open(p).read()
    if old not in s:
        sys.exit("%s: the code of %s has changed; update the patch" % (v, path))
    open(p, "w").write(s.replace(old, new, 1))
if v == "decimal":
    sub("src/decimal.h", "static inline char *decimal_put_u64(char *p, uint64_t v)\n{",
        "#include <inttypes.h>\n#include <stdio.h>\n"
        "static inline char *decimal_put_u64(char *p, uint64_t v)\n{\n"
        "    char t[24];\n    int k = snprintf(t, sizeof(t), \"%\" PRIu64, v);\n"
        "    for (int i = 0; i < k; i++)\n        *p++ = t[i];\n    return p;\n}\n"
        "static inline char *decimal_put_u64_hand(char *p, uint64_t v)\n{")
elif v == "bodies":
    sub("src/api.c", """    static const char loc[] = "Location: /tareas/";
    char *h = resp->headers;
    memcpy(h, loc, sizeof(loc) - 1);
    h = decimal_put_u64(h + sizeof(loc) - 1, meta->id);
    memcpy(h, "\\r\\n", 3); /* NUL-terminated, as api_add_header() leaves it */
    resp->headers_len = (size_t)(h + 2 - resp->headers);""",
        """    api_add_header(resp, "Location: /tareas/%llu\\r\\n", (unsigned long long)meta->id);""")
    sub("src/api.c", """    if (why == NULL) {
        memcpy(p, ",\\"tasks\\":", 9);
        p = decimal_put_u64(p + 9, num_tasks);
    }
    memcpy(p, ",\\"pid\\":", 7);
    p = decimal_put_u64(p + 7, (uint64_t)api->pid);
    *p++ = '}';""", """    if (why == NULL)
        p += sprintf(p, ",\\"tasks\\":%llu", (unsigned long long)num_tasks);
    p += sprintf(p, ",\\"pid\\":%ld}", api->pid);""")
elif v == "time":
    sub("src/task_json.c", "    if (epoch_seconds >= JSON_TIME_MIN && epoch_seconds <= JSON_TIME_MAX) {",
        "    if (0 && epoch_seconds >= JSON_TIME_MIN && epoch_seconds <= JSON_TIME_MAX) {")
elif v == "window":
    sub("src/task_store_tail.c", "    if (hint <= 0)\n        return 0;", "    if (1 || hint <= 0)\n        return 0;")
PY
}

# build VARIANT: $TMP/VARIANT/build/src/taskserver, or exit 1.
build_variant() {
    local d=$TMP/$1
    mkdir -p "$d"
    git -C "$ROOT" archive HEAD | tar -x -C "$d" || return 1
    if [ "$1" != reference ]; then
        patch_variant "$1" "$d" || return 1
    fi
    meson setup "$d/build" "$d" -Dtests=false >"$d/setup.log" 2>&1 &&
        meson compile -C "$d/build" >"$d/compile.log" 2>&1 ||
        { echo "$ME: building $1 failed (see $d)" >&2; return 1; }
}

# start BUILD [WRAPPER...]: one worker on a fresh file; sets PORT, SPID.
start() {
    local b=$1 d
    shift
    d=$(mktemp -d "$TMP/run.XXXXXX")
    "$@" "$b/src/taskserver" --port 0 --bind 127.0.0.1 --workers 1 --file "$d/tasks.json" \
        --quiet 2>"$d/err" &
    SPID=$!
    PIDS+=("$SPID")
    RUN=$d
    PORT=""
    for _ in $(seq 1 300); do
        PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$d/err")
        [ -n "$PORT" ] && break
        sleep 0.1
    done
    for _ in $(seq 1 300); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/health" && return 0
        sleep 0.1
    done
    echo "$ME: $b did not start" >&2
    return 1
}

cat >"$TMP/post.lua" <<'LUA'
local n = 0
request = function()
    n = n + 1
    local body = string.format('{"titulo":"wrk-%d","cliente":"bench","seq":%d}', n, n)
    return wrk.format("POST", "/tareas", {["Content-Type"] = "application/json"}, body)
end
LUA

# load KIND: wrk -c 1 for SECS seconds; prints the number of requests answered.
load() {
    local out=$RUN/wrk
    if [ "$1" = post ]; then
        wrk -t 1 -c 1 -d "${SECS}s" -s "$TMP/post.lua" "http://127.0.0.1:$PORT/tareas" >"$out" 2>&1
    else
        wrk -t 1 -c 1 -d "${SECS}s" "http://127.0.0.1:$PORT/health" >"$out" 2>&1
    fi
    awk '/requests in/ {print $1}' "$out"
}

# instructions BUILD KIND: the worker's instructions per request under callgrind.
instructions() {
    start "$1" valgrind --tool=callgrind -q --callgrind-out-file="$TMP/cg.%p" || return 1
    local cg=$RUN n
    rm -f "$TMP"/cg.*
    n=$(load "$2")
    kill -TERM "$SPID"
    wait "$SPID" 2>/dev/null
    # The worker is the process with the most instructions (the master mostly waits).
    local ir
    ir=$(for f in "$TMP"/cg.*; do grep -m1 '^summary:' "$f" | awk '{print $2}'; done | sort -n | tail -1)
    rm -rf "$cg"
    awk -v ir="$ir" -v n="$n" 'BEGIN { if (n > 0) printf "%.0f", ir / n; else print "?" }'
}

# syscalls BUILD KIND: the worker's system calls per request (strace -c).
syscalls() {
    start "$1" || return 1
    local w n
    w=$(pgrep -P "$SPID" | head -1)
    strace -c -p "$w" -o "$RUN/strace" 2>/dev/null &
    local st=$!
    sleep 0.5
    n=$(load "$2")
    kill -INT "$st"
    wait "$st" 2>/dev/null
    kill -TERM "$SPID"
    wait "$SPID" 2>/dev/null
    awk -v n="$n" '$NF == "total" { printf "%.2f", $4 / n }' "$RUN/strace"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.3f", b / a; else print "?" }'; }

echo "fast paths against their plain code; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "building from $(git -C "$ROOT" rev-parse --short HEAD)"
variants=()
build_variant reference || exit 1
for v in decimal bodies time window; do
    if build_variant "$v"; then variants+=("$v"); else echo "skipped: $v"; fi
done
ref=$TMP/reference/build
ref_post=$(instructions "$ref" post)
ref_health=$(instructions "$ref" health)
echo "reference: POST $ref_post, GET /health $ref_health instructions per request"
for v in "${variants[@]}"; do
    b=$TMP/$v/build
    p=$(instructions "$b" post)
    h=$(instructions "$b" health)
    echo "$v: POST $p ($(ratio "$ref_post" "$p") of the reference), GET /health $h ($(ratio "$ref_health" "$h"))"
done
for v in "${variants[@]}"; do
    [ "$v" = window ] || continue
    echo "window: system calls per request: POST $(syscalls "$ref" post) with, $(syscalls "$TMP/window/build" post) without;" \
        "GET /health $(syscalls "$ref" health) with, $(syscalls "$TMP/window/build" health) without"
done
