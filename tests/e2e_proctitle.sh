#!/usr/bin/env bash
# tests/e2e_proctitle.sh - ps shows "taskserver: master" and "taskserver: worker N" (src/proctitle.c).
#
# Checks, on a real server on 127.0.0.1:
#   - the master's command line is "taskserver: master", each worker's "taskserver: worker N"
#     with N = 1..W, one each; comm is "taskserver" and "taskserver-wN" (what pgrep matches);
#   - `ps -o args` shows the titles (what a student types), with nothing of the old command
#     line left after them;
#   - a title longer than the whole original command line (argv[0] "t", every setting in the
#     environment) is still shown whole, and the server read its environment after it was
#     moved out of the way (its workers, its file, its port are the ones the variables say);
#   - a worker killed with SIGKILL is replaced under the same N.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
require_tool ps

# cmdline PID: the command line as the kernel reports it, NULs as spaces, trailing cut.
cmdline() {
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | sed 's/ *$//'
}

# titles MASTER_PID: the master's title, then its children's titles sorted, one per line.
titles() {
    cmdline "$1"
    echo
    local c
    for c in $(children_of "$1"); do
        cmdline "$c"
        echo
    done | sort
}

# wait_titles MASTER_PID WORKERS: until every worker shows its title (bounded, 10 s).
expected_titles() {
    echo "taskserver: master"
    seq 1 "$1" | sed 's/^/taskserver: worker /' | sort
}

check_titles() { # check_titles WHAT MASTER_PID WORKERS
    local want
    want=$(expected_titles "$3")
    if ! wait_until 10 test "$(titles "$2")" = "$want"; then
        fail "$1: titles: expected '$(echo "$want" | tr '\n' '|')', got '$(titles "$2" | tr '\n' '|')'"
        return
    fi
    pass "$1: master and $3 workers show their titles"
}

# ---- 1. an ordinary start: titles, comm, ps ----
start_server "$E2E_DIR/tasks.json" --workers 3 || e2e_finish
check_titles "ordinary start" "$SERVER_PID" 3
check_eq "master comm" taskserver "$(cat "/proc/$SERVER_PID/comm")"
comms=$(for c in $(children_of "$SERVER_PID"); do cat "/proc/$c/comm"; done | sort | tr '\n' ' ')
check_eq "workers' comm" "taskserver-w1 taskserver-w2 taskserver-w3 " "$comms"
# What a student sees: ps's args column, exactly the title (no old flags after it).
ps_args=$(ps -o args= -p "$SERVER_PID")
check_eq "ps -o args of the master" "taskserver: master" "$ps_args"
check_eq "pgrep -c taskserver finds the master and its workers" 4 \
    "$(pgrep -c -s "$(ps -o sid= -p "$SERVER_PID" | tr -d ' ')" taskserver)"

# ---- 2. a replaced worker keeps its number ----
victim=""
for c in $(children_of "$SERVER_PID"); do
    [ "$(cmdline "$c")" = "taskserver: worker 2" ] && victim=$c
done
if [ -z "$victim" ]; then
    fail "no process titled 'taskserver: worker 2'"
else
    kill -KILL "$victim"
    if wait_until 10 sh -c "! kill -0 $victim 2>/dev/null"; then
        check_titles "after SIGKILL of worker 2" "$SERVER_PID" 3
        new=$(for c in $(children_of "$SERVER_PID"); do
            [ "$(cmdline "$c")" = "taskserver: worker 2" ] && echo "$c"
        done)
        if [ -n "$new" ] && [ "$new" != "$victim" ]; then
            pass "worker 2 replaced by process $new"
        else
            fail "worker 2 not replaced: '$new' (was $victim)"
        fi
    else
        fail "worker $victim did not die after SIGKILL"
    fi
fi
stop_server
check_eq "exit status after SIGTERM" 0 "$SERVER_STATUS"

# ---- 3. a command line shorter than the title; settings only in the environment ----
# argv is "t" and nothing else: the title must spill over the moved environment, and the
# server must still read TASKSERVER_* after the move.
log="$E2E_DIR/short.log"
env -i PATH="$PATH" TASKSERVER_PORT=0 TASKSERVER_BIND=127.0.0.1 TASKSERVER_WORKERS=2 \
    TASKSERVER_FILE="$E2E_DIR/short.json" TASKSERVER_QUIET=1 \
    bash -c 'exec -a t "$0"' "$TASKSERVER" 2>"$log" &
pid=$!
track_pid "$pid"
port=""
for _ in $(seq 1 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$log" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
done
if [ -z "$port" ]; then
    fail "short command line: no listening line"
    sed 's/^/    server: /' "$log" | head -20 >&2
else
    check_match "short command line: settings read from the moved environment" \
        "2 workers, locking (on|OFF), file $E2E_DIR/short.json" "$(cat "$log")"
    check_titles "short command line" "$pid" 2
    check_eq "short command line: GET /health" 200 \
        "$(wait_until 10 curl -sf -o /dev/null "http://127.0.0.1:$port/health" && echo 200)"
    check_cmd "short command line: POST stores" \
        curl -sf -o /dev/null -XPOST "http://127.0.0.1:$port/tareas" -d '{"titulo":"t"}'
fi
kill -TERM "$pid" 2>/dev/null
if wait_exit "$pid" 15; then
    check_eq "short command line: exit status after SIGTERM" 0 "$WAIT_STATUS"
else
    fail "short command line: did not exit within 15 s of SIGTERM"
fi
check_sanitizer_log "$log"
e2e_finish
