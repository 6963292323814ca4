# lib.sh - shared helpers for the end-to-end shell tests: temp dir, server start/stop, bounded waits.
#
# Usage, from a bash test script:
#
#     . "$(dirname "$0")/lib.sh"
#     e2e_init                       # scratch dir in $E2E_DIR, cleanup trap, checks $TASKSERVER
#     start_server "$E2E_DIR/tasks.json" --grace 5    # sets SERVER_PID, PORT, SERVER_LOG
#     check_eq "GET /health status" 200 "$(curl ...)"
#     stop_server                    # SIGTERM, bounded wait; exit status in SERVER_STATUS
#     e2e_finish                     # prints the summary; exits 1 if any check failed
#
# Every wait is bounded. Every process started through these helpers (and every
# child of a server, in case its master was killed) is killed by the EXIT trap,
# by pid. A missing tool ends the script with 77 (skipped) and the reason.
#
# A failed check fails the test even when it ran in a subshell ($(...), a pipe, a
# background job): fail() also appends to $E2E_DIR/.failures, which the EXIT trap
# counts. The scratch dir lives under $BUILD_ROOT/test-tmp (meson's build dir; $TMPDIR
# or /tmp outside meson) and is removed on every exit, a failure, SIGTERM from meson's
# timeout and Ctrl-C included; on a failure the server logs' tails are printed first
# (meson keeps them in the test log). E2E_KEEP=1 keeps the files instead, moved to
# $BUILD_ROOT/test-kept/.

# Variables set here are read by the scripts that source this file.
# shellcheck disable=SC2034
E2E_FAILS=0
E2E_PASSES=0
E2E_PIDS=""
E2E_DIR=""
SERVER_PID=""
PORT=""
SERVER_LOG=""
SERVER_STATUS=""

# skip REASON: the test cannot run here (exit 77).
skip() {
    echo "SKIP: $*" >&2
    exit 77
}

# note MESSAGE: progress on stderr (meson keeps it in the test log).
note() {
    echo "# $*" >&2
}

pass() {
    E2E_PASSES=$((E2E_PASSES + 1))
    echo "ok: $*" >&2
}

# fail DESCRIPTION: records a failed check; the script goes on.
fail() {
    E2E_FAILS=$((E2E_FAILS + 1))
    echo "FAIL: $*" >&2
    # Seen by the main shell even from a subshell, whose E2E_FAILS is lost.
    [ -n "$E2E_DIR" ] && [ -d "$E2E_DIR" ] && echo "$*" >>"$E2E_DIR/.failures"
}

# e2e_failures: failed checks so far, those of subshells included.
e2e_failures() {
    local n=0
    [ -n "$E2E_DIR" ] && [ -f "$E2E_DIR/.failures" ] && n=$(grep -c '' "$E2E_DIR/.failures")
    [ "$E2E_FAILS" -gt "$n" ] && n=$E2E_FAILS
    echo "$n"
}

# check_eq DESCRIPTION EXPECTED GOT
check_eq() {
    if [ "$2" = "$3" ]; then
        pass "$1"
    else
        fail "$1: expected '$2', got '$3'"
    fi
}

# check_match DESCRIPTION EXTENDED-REGEX TEXT
check_match() {
    if printf '%s' "$3" | grep -Eq -- "$2"; then
        pass "$1"
    else
        fail "$1: expected a match for /$2/, got '$(printf '%s' "$3" | head -c 600)'"
    fi
}

# check_cmd DESCRIPTION COMMAND...: the command must exit 0; its output is shown if not.
check_cmd() {
    local desc=$1 out rc
    shift
    out=$("$@" 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then
        pass "$desc"
    else
        fail "$desc: expected exit 0, got $rc from: $*"
        printf '%s\n' "$out" | head -40 | sed 's/^/    /' >&2
    fi
}

# require_tool NAME...: skip the test when a tool is missing.
require_tool() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || skip "$t not found in PATH"
    done
}

# track_pid PID: killed by the cleanup trap if still alive.
track_pid() {
    E2E_PIDS="$E2E_PIDS $1"
}

# children_of PID: the pids of its direct children, one per line.
children_of() {
    pgrep -P "$1" 2>/dev/null || true
}

# e2e_scratch_root: where scratch dirs go: the build dir under meson, never a /tmp
# folder a killed run would leave behind.
e2e_scratch_root() {
    if [ -n "${BUILD_ROOT:-}" ] && mkdir -p "$BUILD_ROOT/test-tmp" 2>/dev/null; then
        echo "$BUILD_ROOT/test-tmp"
    else
        echo "${TMPDIR:-/tmp}"
    fi
}

# e2e_dump_logs: the tails of the server logs, for a failed or interrupted run.
e2e_dump_logs() {
    local f
    for f in "$E2E_DIR"/server.*.log; do
        [ -s "$f" ] || continue
        echo "# --- last lines of $(basename "$f")" >&2
        tail -n 30 "$f" | sed 's/^/#     /' >&2
    done
}

# e2e_cleanup [STATUS]: the EXIT trap (STATUS: the exit status, when a wrapping trap
# ran commands first).
e2e_cleanup() {
    local rc=${1:-$?} p c fails
    for p in $E2E_PIDS; do
        # A server's workers first: they outlive a master killed with SIGKILL.
        for c in $(children_of "$p"); do
            kill -KILL "$c" 2>/dev/null
        done
        kill -KILL "$p" 2>/dev/null
    done
    for p in $E2E_PIDS; do
        wait "$p" 2>/dev/null
    done
    if [ -n "$E2E_DIR" ] && [ -d "$E2E_DIR" ]; then
        fails=$(e2e_failures)
        # A check failed in a subshell only: the test fails all the same.
        [ "$fails" -gt 0 ] && [ "$rc" -eq 0 ] && rc=1
        [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -z "${E2E_LOGS_SHOWN:-}" ] && e2e_dump_logs
        if [ -n "${E2E_KEEP:-}" ] && [ -n "${BUILD_ROOT:-}" ] &&
            mkdir -p "$BUILD_ROOT/test-kept" && mv "$E2E_DIR" "$BUILD_ROOT/test-kept/"; then
            echo "# test files kept in $BUILD_ROOT/test-kept/$(basename "$E2E_DIR")" >&2
        elif [ -n "${E2E_KEEP:-}" ]; then
            echo "# test files kept in $E2E_DIR" >&2
        else
            rm -rf "$E2E_DIR"
        fi
    fi
    exit "$rc"
}

# e2e_init: scratch dir, traps, and the programs under test.
e2e_init() {
    [ -n "$TASKSERVER" ] || skip "TASKSERVER is not set (run through meson test)"
    [ -x "$TASKSERVER" ] || skip "$TASKSERVER is not an executable"
    require_tool curl timeout pgrep python3
    E2E_DIR=$(mktemp -d "$(e2e_scratch_root)/taskserver-e2e.XXXXXX") || skip "mktemp failed"
    trap e2e_cleanup EXIT
    # meson's timeout sends SIGTERM, then SIGKILL 0.5 s later: clean up at once.
    trap 'echo "# interrupted by a signal: cleaning up" >&2; exit 130' INT TERM
    LOCKING=${LOCKING:-1}
}

# now_ms: monotonic enough for bounds of seconds.
now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# wait_until SECONDS COMMAND...: polls every 0.1 s; returns 0 once it succeeds, 1 on timeout.
wait_until() {
    local limit=$(($1 * 10)) i=0
    shift
    while [ $i -lt $limit ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# wait_exit PID SECONDS: waits for a child of this shell to exit; its status in
# WAIT_STATUS. Returns 1 (and leaves it running) on timeout.
wait_exit() {
    local pid=$1 limit=$(($2 * 10)) i=0
    WAIT_STATUS=""
    while kill -0 "$pid" 2>/dev/null; do
        # A zombie still answers kill -0: ask the kernel for its state.
        if [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = "Z" ]; then
            break
        fi
        [ $i -ge $limit ] && return 1
        sleep 0.1
        i=$((i + 1))
    done
    wait "$pid"
    WAIT_STATUS=$?
    return 0
}

# start_server FILE [ARGS...]: taskserver on 127.0.0.1, port 0, 4 workers
# (later ARGS win, e.g. --workers 1). Sets SERVER_PID, PORT, SERVER_LOG.
# Returns 1 (and records a failure) if it does not report its port within 10 s.
start_server() {
    local file=$1 i
    shift
    E2E_NSERVERS=$((${E2E_NSERVERS:-0} + 1))
    SERVER_LOG="$E2E_DIR/server.$E2E_NSERVERS.log"
    PORT=""
    : >"$SERVER_LOG" # the poll below may run before the background job opens it
    "$TASKSERVER" --port 0 --bind 127.0.0.1 --workers 4 --file "$file" "$@" \
        >"$SERVER_LOG.out" 2>"$SERVER_LOG" &
    SERVER_PID=$!
    track_pid "$SERVER_PID"
    for i in $(seq 1 100); do
        PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$SERVER_LOG" | head -1)
        [ -n "$PORT" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$PORT" ]; then
        fail "start_server $*: no 'listening on 127.0.0.1:PORT' line on stderr within 10 s"
        sed 's/^/    server: /' "$SERVER_LOG" | head -20 >&2
        return 1
    fi
    # The port is bound before workers exist: wait until one answers.
    if ! wait_until 10 curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/health"; then
        fail "start_server: GET /health on port $PORT does not answer within 10 s"
        sed 's/^/    server: /' "$SERVER_LOG" | head -20 >&2
        return 1
    fi
    note "server $SERVER_PID listening on port $PORT ($*)"
    return 0
}

# stop_server [SIGNAL] [SECONDS]: signals the master (default TERM) and waits up
# to SECONDS (default 15); exit status in SERVER_STATUS ("timeout" if it would
# not stop, and then it is killed).
stop_server() {
    local sig=${1:-TERM} secs=${2:-15}
    SERVER_STATUS=""
    [ -n "$SERVER_PID" ] || return 0
    kill -"$sig" "$SERVER_PID" 2>/dev/null
    if wait_exit "$SERVER_PID" "$secs"; then
        SERVER_STATUS=$WAIT_STATUS
    else
        SERVER_STATUS=timeout
        local c
        for c in $(children_of "$SERVER_PID"); do
            kill -KILL "$c" 2>/dev/null
        done
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    SERVER_PID=""
    check_sanitizer_log "$SERVER_LOG"
}

# check_sanitizer_log FILE: in a sanitizer build, a worker's report lands in the
# server's stderr while the master quietly replaces it: fail on any report.
check_sanitizer_log() {
    if grep -Eq 'ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:' "$1" 2>/dev/null; then
        fail "sanitizer report in $1:"
        grep -E -A12 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$1" | head -40 | sed 's/^/    /' >&2
    fi
}

# http_status CURL-ARGS...: prints the status code curl got (000 on failure).
http_status() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@"
}

# ---- synchronizing on the server's sockets, not on sleeps ----

# tcp_port_stats PORT: "ESTABLISHED UNREAD UNSENT" over the server's side of its TCP
# connections on 127.0.0.1:PORT (accepted or still in the backlog), from /proc/net/tcp:
# how many, the bytes received that the server has not read yet, the bytes it wrote that
# the client has not taken yet.
tcp_port_stats() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" '
        function h(s,   i, n) {
            n = 0
            s = toupper(s)
            for (i = 1; i <= length(s); i++)
                n = n * 16 + index("0123456789ABCDEF", substr(s, i, 1)) - 1
            return n
        }
        $2 ~ p"$" && $4 == "01" { n++; split($5, q, ":"); tx += h(q[1]); rx += h(q[2]) }
        END { print n + 0, rx + 0, tx + 0 }' /proc/net/tcp
}

# port_all_read PORT: succeeds when the server has a connection on PORT and has read
# every byte its clients sent (for wait_until).
port_all_read() {
    local est unread
    read -r est unread _ <<<"$(tcp_port_stats "$1")"
    [ "$est" -ge 1 ] && [ "$unread" -eq 0 ]
}

# server_conns: sockets the current server's workers hold (the listening socket and
# every accepted connection), from /proc/PID/fd.
server_conns() {
    local w n=0
    for w in $(children_of "$SERVER_PID"); do
        n=$((n + $(find "/proc/$w/fd" -lname 'socket:*' 2>/dev/null | wc -l)))
    done
    echo "$n"
}

# server_conns_ge N: succeeds once server_conns is at least N (for wait_until).
server_conns_ge() {
    [ "$(server_conns)" -ge "$1" ]
}

# hold_ready ERRFILE: raw_http hold (stderr in ERRFILE) has made its connections and
# sent each its prefix.
hold_ready() {
    grep -q '^raw_http: hold: ready' "$1" 2>/dev/null
}

# wait_held DESC ERRFILE BASE N: waits (20 s at most) until the raw_http hold whose
# stderr is ERRFILE is ready and the server's workers hold BASE + N sockets (BASE:
# server_conns before the hold started): the held connections are accepted, so a check
# made now runs with the stall in place. Fails the check DESC and returns 1 otherwise.
wait_held() {
    local desc=$1 err=$2 want=$(($3 + $4))
    if ! wait_until 20 hold_ready "$err"; then
        fail "$desc: raw_http hold not ready within 20 s: $(head -c 300 "$err")"
        return 1
    fi
    if ! wait_until 20 server_conns_ge "$want"; then
        fail "$desc: the server holds $(server_conns) sockets, not $want, 20 s after the hold was ready"
        return 1
    fi
}

# e2e_finish: summary line and exit status (failed checks of subshells included).
e2e_finish() {
    local fails
    fails=$(e2e_failures)
    echo "# $E2E_PASSES passed, $fails failed" >&2
    [ "$fails" -eq 0 ] || exit 1
    exit 0
}
