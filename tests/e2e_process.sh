#!/usr/bin/env bash
# e2e_process.sh - the server's processes where things go wrong (issue 18): start-up refusals,
# the open file limit, signals the other suites do not send, the grace period running out, a
# worker that cannot start, and system calls made to fail under tests/shim_fault.c.
#
#     e2e_process.sh CASE
#
#   startup      a port in use, a --trace path that is a file: exit 1 with the reason; a
#                failing realpath only changes the start-up line
#   nofile       the soft open file limit is raised to the hard one, and --max-connections
#                over the limit is warned about
#   sighup       SIGHUP is logged and ignored: same workers, still serving
#   grace        SIGTERM with a half-sent request and --grace 1: the straggler gets SIGKILL
#                1 s after the shutdown began (timed from the server's own log lines)
#   worker_quit  SIGQUIT to one worker: it leaves at once, mid-request, and is replaced
#   master_quit  SIGQUIT to the master: every worker gets SIGKILL at once (no grace), the
#                master reaps them all and exits 0
#   no_spare     a worker cannot open its spare descriptor (/dev/null): it exits 1 saying
#                so, and its replacement serves
#   trace_gone   the --trace directory removed: a new worker cannot open its trace, exits 1,
#                and is retried once a second (not in a loop); back once the directory is
#   fork_fails   fork of the first worker fails: logged, the slot is tried again 1 s later
#   no_memory    the shared pages cannot be mapped: exit 1 with the reason, no worker
#   accept       accept4 fails once (ENOBUFS logged, ECONNABORTED not), TCP_NODELAY cannot
#                be set: the worker goes on and the waiting client is served
#
# Environment (set by meson test): TASKSERVER, RAW_HTTP, SHIM_FAULT (the shim's path),
# LOCKING. Exit 0 pass, 1 fail, 77 skip.

. "$(dirname "$0")/lib.sh"

CASE=${1:-}
e2e_init
[ -n "${RAW_HTTP:-}" ] && [ -x "$RAW_HTTP" ] || skip "RAW_HTTP is not set (run through meson test)"
[ -n "${SHIM_FAULT:-}" ] && [ -f "$SHIM_FAULT" ] || skip "SHIM_FAULT is not set (run through meson test)"

# shimmed RULES: a wrapper in $E2E_DIR that runs taskserver under the fault shim with
# SHIM_FAULT=RULES, logging each injected failure to $E2E_DIR/fault.N.log (exec: the server
# keeps the wrapper's pid). Its path in SHIMMED, the log in FAULT_LOG. In a sanitizer build
# the sanitizer runtime must come first in LD_PRELOAD.
shimmed() {
    local pre="$SHIM_FAULT" asan
    asan=$(ldd "$TASKSERVER" 2>/dev/null | awk '/libasan\.so/ {print $3; exit}')
    [ -n "$asan" ] && pre="$asan $pre"
    E2E_NSHIM=$((${E2E_NSHIM:-0} + 1))
    SHIMMED="$E2E_DIR/shimmed.$E2E_NSHIM.sh"
    FAULT_LOG="$E2E_DIR/fault.$E2E_NSHIM.log"
    : >"$FAULT_LOG"
    printf '#!/bin/sh\nexec env LD_PRELOAD=%q SHIM_FAULT=%q SHIM_FAULT_LOG=%q %q "$@"\n' \
        "$pre" "$1" "$FAULT_LOG" "$TASKSERVER" >"$SHIMMED"
    chmod +x "$SHIMMED"
}

# run_refused DESC EXPECTED-STDERR-REGEX ARGS...: taskserver must exit 1 within 10 s, saying
# so on stderr, and leave no child behind.
run_refused() {
    local desc=$1 want=$2 out pid
    shift 2
    E2E_NREFUSED=$((${E2E_NREFUSED:-0} + 1))
    out="$E2E_DIR/refused.$E2E_NREFUSED.err"
    REFUSED_ERR=$out
    "$TASKSERVER" "$@" >/dev/null 2>"$out" &
    pid=$!
    track_pid "$pid"
    if ! wait_exit "$pid" 10; then
        fail "$desc: still running after 10 s"
        return
    fi
    check_eq "$desc: exit status" 1 "$WAIT_STATUS"
    check_match "$desc: the reason on stderr" "$want" "$(cat "$out")"
    check_sanitizer_log "$out"
}

# log_ms REGEX [LOG]: the time of the first server log line matching REGEX, in ms since
# midnight (from its own timestamp: "2026-12-03T13:20:52.454Z"); empty if none.
log_ms() {
    grep -E -m1 -- "$1" "${2:-$SERVER_LOG}" |
        sed -n 's/^[0-9-]*T\([0-9][0-9]\):\([0-9][0-9]\):\([0-9][0-9]\)\.\([0-9]\{3\}\)Z.*/\1 \2 \3 \4/p' |
        awk '{ print (($1 * 60 + $2) * 60 + $3) * 1000 + $4 }'
}

# ------------------------------------------------------------ startup

case_startup() {
    local d="$E2E_DIR/startup" other
    mkdir -p "$d"
    start_server "$d/a.json" --workers 1 --quiet || return
    other=$PORT
    run_refused "a port already in use" \
        "bind 127\\.0\\.0\\.1:$other: Address already in use" \
        --port "$other" --bind 127.0.0.1 --workers 1 --file "$d/b.json"
    stop_server
    check_eq "the first server still stopped cleanly" 0 "$SERVER_STATUS"

    : >"$d/not-a-dir"
    run_refused "--trace naming a regular file" \
        "trace directory $d/not-a-dir: not a directory" \
        --port 0 --bind 127.0.0.1 --workers 1 --file "$d/c.json" --trace "$d/not-a-dir"

    # realpath fails: the server starts all the same, and names the file as it was given
    # (relative: the server runs in $d).
    shimmed "realpath=EACCES"
    cd "$d" || return
    TASKSERVER=$SHIMMED start_server e.json --workers 1 --quiet || return
    cd - >/dev/null || return
    check_eq "realpath failing: the fault happened" 1 "$(grep -c ' realpath EACCES e\.json$' "$FAULT_LOG")"
    check_match "realpath failing: warned, naming the file" "realpath e\\.json: Permission denied" \
        "$(cat "$SERVER_LOG")"
    check_match "realpath failing: the start-up line names the file as given" \
        "listening on 127\\.0\\.0\\.1:$PORT, 1 worker, locking (on|OFF), file e\\.json\$" \
        "$(cat "$SERVER_LOG")"
    check_eq "realpath failing: the server serves" 200 \
        "$(http_status "http://127.0.0.1:$PORT/health")"
    stop_server
    check_eq "realpath failing: SIGTERM exit status" 0 "$SERVER_STATUS"
}

# ------------------------------------------------------------ nofile

# limited LIMIT-ARGS: a wrapper in $E2E_DIR that runs taskserver after `ulimit LIMIT-ARGS`
# (exec: the server keeps the wrapper's pid); its path in LIMITED.
limited() {
    E2E_NLIMITED=$((${E2E_NLIMITED:-0} + 1))
    LIMITED="$E2E_DIR/limited.$E2E_NLIMITED.sh"
    printf '#!/usr/bin/env bash\nulimit %s || exit 3\nexec %q "$@"\n' "$*" "$TASKSERVER" >"$LIMITED"
    chmod +x "$LIMITED"
}

case_nofile() {
    local d="$E2E_DIR/nofile" hard w
    mkdir -p "$d"
    hard=$(ulimit -H -n)
    [ "$hard" != unlimited ] && [ "$hard" -ge 1024 ] ||
        skip "the hard open file limit is $hard: no room to start below it"
    # The soft limit below the hard one: the server raises it, and counts with the hard one.
    limited -S -n 512
    TASKSERVER=$LIMITED start_server "$d/a.json" --workers 1 --quiet || return
    check_match "soft limit 512 raised to the hard limit $hard" \
        "at most $((hard - 64)) connections per worker \\(open file limit $hard\\)" \
        "$(cat "$SERVER_LOG")"
    w=$(children_of "$SERVER_PID" | head -1)
    check_eq "the worker runs with the raised limit" "$hard" \
        "$(awk '/^Max open files/ {print $4}' "/proc/$w/limits" 2>/dev/null)"
    stop_server
    check_eq "raised limit: SIGTERM exit status" 0 "$SERVER_STATUS"

    # --max-connections over what the limit allows: a warning, and the server runs.
    limited -n 256
    TASKSERVER=$LIMITED start_server "$d/b.json" --workers 1 --quiet --max-connections 1000 ||
        return
    check_match "--max-connections 1000 with 256 descriptors: warned" \
        "open file limit 256 is below --max-connections 1000 \\+ 64: workers will refuse connections early" \
        "$(cat "$SERVER_LOG")"
    check_eq "--max-connections over the limit: the server serves" 200 \
        "$(http_status "http://127.0.0.1:$PORT/health")"
    stop_server
    check_eq "over the limit: SIGTERM exit status" 0 "$SERVER_STATUS"
}

# ------------------------------------------------------------ sighup

case_sighup() {
    local d="$E2E_DIR/hup" before after
    mkdir -p "$d"
    start_server "$d/tasks.json" --workers 2 --quiet || return
    before=$(children_of "$SERVER_PID" | sort | tr '\n' ' ')
    kill -HUP "$SERVER_PID"
    wait_until 5 grep -q 'SIGHUP ignored: there is no configuration to reload' "$SERVER_LOG" ||
        fail "SIGHUP: no 'SIGHUP ignored' line within 5 s"
    check_eq "SIGHUP: the master is still running" yes \
        "$(kill -0 "$SERVER_PID" 2>/dev/null && echo yes || echo no)"
    after=$(children_of "$SERVER_PID" | sort | tr '\n' ' ')
    check_eq "SIGHUP: the same workers (none restarted)" "$before" "$after"
    check_eq "SIGHUP: POST still stored" 201 \
        "$(http_status -XPOST "http://127.0.0.1:$PORT/tareas" -d '{"titulo":"tras HUP"}')"
    stop_server
    check_eq "SIGHUP: SIGTERM exit status" 0 "$SERVER_STATUS"
}

# ------------------------------------------------------------ grace

case_grace() {
    local d="$E2E_DIR/grace" conns0 t_term t_kill dt
    mkdir -p "$d"
    # Header and body timeouts far beyond the grace: only the grace can end the request.
    start_server "$d/tasks.json" --workers 2 --quiet --grace 1 --header-timeout 60 || return
    conns0=$(server_conns)
    "$RAW_HTTP" hold -p "$PORT" -n 1 -d 30000 -s 'GET /health HTTP/1.1\r\nHost: e2e\r\n' \
        >"$d/hold.out" 2>"$d/hold.err" &
    track_pid $!
    wait_held "grace: a half-sent request" "$d/hold.err" "$conns0" 1 || return
    stop_server TERM 10
    check_eq "grace over: exit status (a shutdown, not a failure)" 0 "$SERVER_STATUS"
    check_match "grace over: the one straggler killed" 'grace period over: SIGKILL to 1 workers' \
        "$(cat "$SERVER_LOG")"
    check_match "grace over: the worker died by SIGKILL" 'killed by signal 9' "$(cat "$SERVER_LOG")"
    t_term=$(log_ms 'shutting down: ')
    t_kill=$(log_ms 'grace period over')
    dt=$((${t_kill:-0} - ${t_term:-0}))
    check_eq "grace over: SIGKILL 1 s after the shutdown began, by the server's clock" yes \
        "$([ -n "$t_term" ] && [ -n "$t_kill" ] && [ "$dt" -ge 990 ] && [ "$dt" -lt 3000 ] &&
            echo yes || echo "no (${dt} ms)")"
}

# ------------------------------------------------------------ worker_quit

case_worker_quit() {
    local d="$E2E_DIR/quit" conns0 victim now
    mkdir -p "$d"
    start_server "$d/tasks.json" --workers 1 --quiet --grace 10 --header-timeout 60 || return
    conns0=$(server_conns)
    "$RAW_HTTP" hold -p "$PORT" -n 1 -d 20000 -s 'GET /health HTTP/1.1\r\n' \
        >"$d/hold.out" 2>"$d/hold.err" &
    local hold=$!
    track_pid $hold
    wait_held "worker SIGQUIT: a half-sent request" "$d/hold.err" "$conns0" 1 || return
    victim=$(children_of "$SERVER_PID")
    kill -QUIT "$victim"
    # Gone at once, the request unfinished: the client sees its connection closed.
    wait_exit "$hold" 10 || fail "worker SIGQUIT: the held connection still open after 10 s"
    check_match "worker SIGQUIT: the connection closed without an answer" \
        'connected=1 failed=0 closed=1 answered=0' "$(cat "$d/hold.out")"
    check_match "worker SIGQUIT: a clean exit, logged" "worker $victim exited with status 0" \
        "$(cat "$SERVER_LOG")"
    for _ in $(seq 1 50); do
        now=$(children_of "$SERVER_PID")
        [ -n "$now" ] && [ "$now" != "$victim" ] && break
        sleep 0.1
    done
    check_eq "worker SIGQUIT: replaced (a new worker, not the old one)" yes \
        "$([ -n "$now" ] && [ "$now" != "$victim" ] && echo yes || echo "no ($now)")"
    check_eq "worker SIGQUIT: still serving" 200 "$(http_status "http://127.0.0.1:$PORT/health")"
    stop_server
    check_eq "worker SIGQUIT: SIGTERM exit status" 0 "$SERVER_STATUS"
}

# ------------------------------------------------------------ master_quit

case_master_quit() {
    local d="$E2E_DIR/mquit" conns0 workers t0 ms w
    mkdir -p "$d"
    start_server "$d/tasks.json" --workers 2 --quiet --grace 30 --header-timeout 60 || return
    workers=$(children_of "$SERVER_PID" | sort | tr '\n' ' ')
    conns0=$(server_conns)
    "$RAW_HTTP" hold -p "$PORT" -n 1 -d 30000 -s 'GET /health HTTP/1.1\r\n' \
        >"$d/hold.out" 2>"$d/hold.err" &
    track_pid $!
    wait_held "master SIGQUIT: a half-sent request" "$d/hold.err" "$conns0" 1 || return
    t0=$(now_ms)
    # The grace is 30 s: only SIGQUIT's own SIGKILL can end this within 10 s.
    stop_server QUIT 10
    ms=$(($(now_ms) - t0))
    check_eq "master SIGQUIT: exit status" 0 "$SERVER_STATUS"
    check_eq "master SIGQUIT: gone well within the grace" yes \
        "$([ "$ms" -lt 10000 ] && echo yes || echo "no ($ms ms)")"
    check_match "master SIGQUIT: logged" 'quitting now: SIGKILL to 2 workers' "$(cat "$SERVER_LOG")"
    for w in $workers; do
        check_match "master SIGQUIT: worker $w reaped, killed by SIGKILL" \
            "worker $w killed by signal 9" "$(cat "$SERVER_LOG")"
        check_eq "master SIGQUIT: worker $w is gone" no \
            "$(kill -0 "$w" 2>/dev/null && echo yes || echo no)"
    done
    check_eq "master SIGQUIT: no graceful shutdown began" 0 \
        "$(grep -c 'shutting down: ' "$SERVER_LOG")"
}

# ------------------------------------------------------------ no_spare

case_no_spare() {
    local d="$E2E_DIR/spare" victim
    mkdir -p "$d"
    shimmed "open=EMFILE,path=/dev/null,trigger=$d/fail,once"
    TASKSERVER=$SHIMMED start_server "$d/tasks.json" --workers 1 --quiet || return
    victim=$(children_of "$SERVER_PID")
    : >"$d/fail"
    kill -KILL "$victim"
    wait_until 10 grep -q 'open /dev/null: Too many open files' "$SERVER_LOG" ||
        fail "no spare: the new worker did not say it cannot open /dev/null within 10 s"
    check_eq "no spare: the fault happened once" 1 "$(grep -c ' open EMFILE /dev/null' "$FAULT_LOG")"
    wait_until 10 grep -q 'exited with status 1 after 0\.' "$SERVER_LOG" ||
        fail "no spare: the worker did not exit with status 1"
    # Its replacement (1 s later: it died young) opens /dev/null and serves.
    wait_until 10 num_workers_is 1 || fail "no spare: no worker within 10 s"
    check_eq "no spare: served again" 200 "$(http_status "http://127.0.0.1:$PORT/health")"
    stop_server
    check_eq "no spare: SIGTERM exit status" 0 "$SERVER_STATUS"
}

# ------------------------------------------------------------ trace_gone

case_trace_gone() {
    local d="$E2E_DIR/trace" victim n
    mkdir -p "$d"
    start_server "$d/tasks.json" --workers 2 --quiet --trace "$d/tr" || return
    rm -rf "$d/tr"
    victim=$(children_of "$SERVER_PID" | head -1)
    kill -KILL "$victim"
    wait_until 10 grep -q "died [0-9]* ms after start: respawning in 1000 ms" "$SERVER_LOG" ||
        fail "trace dir gone: no young death logged within 10 s"
    check_match "trace dir gone: the new worker says which file it cannot open" \
        "$d/tr/worker-[0-9]+\\.trace" "$(cat "$SERVER_LOG")"
    check_match "trace dir gone: it exits with status 1" 'exited with status 1 after 0\.' \
        "$(cat "$SERVER_LOG")"
    # Retried once a second, not in a loop: over 2.5 s, at most 4 attempts.
    sleep 2.5
    n=$(grep -c 'exited with status 1 after' "$SERVER_LOG")
    check_eq "trace dir gone: at most 4 failed starts in 2.5 s (one a second)" yes \
        "$([ "$n" -ge 2 ] && [ "$n" -le 4 ] && echo yes || echo "no ($n)")"
    check_eq "trace dir gone: the other worker serves meanwhile" 200 \
        "$(http_status "http://127.0.0.1:$PORT/health")"
    mkdir -p "$d/tr"
    # The next start opens its trace there: that worker stays.
    wait_until 5 trace_files_ge "$d/tr" 1 || fail "trace dir back: no worker trace within 5 s"
    local back
    back=$(find "$d/tr" -name 'worker-*.trace' | sed -n 's/.*worker-\([0-9]*\)\.trace$/\1/p')
    sleep 1.5
    check_eq "trace dir back: the new worker ($back) stays" yes \
        "$([ -n "$back" ] && children_of "$SERVER_PID" | grep -qx "$back" && echo yes || echo no)"
    stop_server
    check_eq "trace dir gone: SIGTERM exit status" 0 "$SERVER_STATUS"
}

trace_files_ge() {
    [ "$(find "$1" -name 'worker-*.trace' 2>/dev/null | wc -l)" -ge "$2" ]
}

num_workers_is() {
    [ "$(children_of "$SERVER_PID" | wc -l)" -eq "$1" ]
}

# ------------------------------------------------------------ fork_fails

case_fork_fails() {
    local d="$E2E_DIR/fork" t_fail t_retry dt
    mkdir -p "$d"
    shimmed "fork=EAGAIN,times=1"
    TASKSERVER=$SHIMMED start_server "$d/tasks.json" --workers 2 --quiet || return
    check_eq "the fork did fail once" 1 "$(grep -c ' fork EAGAIN' "$FAULT_LOG")"
    check_match "fork failing: logged" 'fork worker: Resource temporarily unavailable' \
        "$(cat "$SERVER_LOG")"
    wait_until 5 num_workers_is 2 || fail "fork failing: not 2 workers within 5 s"
    # The failed slot is tried again a second later, not at once and not never.
    t_fail=$(log_ms 'fork worker: ')
    t_retry=$(grep -E 'started worker' "$SERVER_LOG" | tail -1 | sed -n \
        's/^[0-9-]*T\([0-9][0-9]\):\([0-9][0-9]\):\([0-9][0-9]\)\.\([0-9]\{3\}\)Z.*/\1 \2 \3 \4/p' |
        awk '{ print (($1 * 60 + $2) * 60 + $3) * 1000 + $4 }')
    dt=$((${t_retry:-0} - ${t_fail:-0}))
    check_eq "fork failing: the slot retried about 1 s later" yes \
        "$([ -n "$t_fail" ] && [ -n "$t_retry" ] && [ "$dt" -ge 990 ] && [ "$dt" -lt 3000 ] &&
            echo yes || echo "no (${dt} ms)")"
    check_eq "fork failing: 2 'started worker' lines" 2 "$(grep -c 'started worker' "$SERVER_LOG")"
    check_match "fork failing: /health counts 2 workers" '"workers": *2[,}]' \
        "$(curl -s --max-time 5 "http://127.0.0.1:$PORT/health")"
    stop_server
    check_eq "fork failing: SIGTERM exit status" 0 "$SERVER_STATUS"
}

# ------------------------------------------------------------ no_memory

case_no_memory() {
    local d="$E2E_DIR/nomem"
    mkdir -p "$d"
    # The board (the first shared page), then the metrics page.
    shimmed "mmap=ENOMEM,shared,times=1"
    run_refused_shimmed "no memory for the board" \
        "allocate 2 worker slots: Cannot allocate memory" "$d/a.json"
    check_eq "the board's mmap failed" 1 "$(grep -c ' mmap ENOMEM' "$FAULT_LOG")"
    if grep -q 'TASKSERVER_METRICS 1' "$BUILD_ROOT/build_config.h" 2>/dev/null; then
        shimmed "mmap=ENOMEM,shared,after=1,times=1"
        run_refused_shimmed "no memory for the metrics" \
            "mmap [0-9]+ bytes for metrics: Cannot allocate memory" "$d/b.json"
        check_eq "the metrics' mmap failed" 1 "$(grep -c ' mmap ENOMEM' "$FAULT_LOG")"
    fi
}

# run_refused_shimmed DESC REGEX FILE: $SHIMMED taskserver on FILE must exit 1 with REGEX on
# stderr, without forking a worker.
run_refused_shimmed() {
    local save=$TASKSERVER
    TASKSERVER=$SHIMMED run_refused "$1" "$2" --port 0 --bind 127.0.0.1 --workers 2 --file "$3"
    TASKSERVER=$save
    check_eq "$1: no worker started" 0 "$(grep -c 'started worker' "$REFUSED_ERR")"
}

# ------------------------------------------------------------ accept

case_accept() {
    local d="$E2E_DIR/accept" workers
    mkdir -p "$d"
    shimmed "accept4=ENOBUFS,trigger=$d/nobufs,once;accept4=ECONNABORTED,trigger=$d/aborted,once;setsockopt=ENOPROTOOPT,level=6,trigger=$d/nodelay,once"
    TASKSERVER=$SHIMMED start_server "$d/tasks.json" --workers 1 --quiet || return
    workers=$(children_of "$SERVER_PID")
    local f
    for f in aborted nobufs nodelay; do
        : >"$d/$f"
        check_eq "$f: the waiting client is served" 200 \
            "$(http_status "http://127.0.0.1:$PORT/health")"
        check_eq "$f: the fault happened" no "$([ -e "$d/$f" ] && echo yes || echo no)"
    done
    check_eq "3 faults injected" 3 "$(wc -l <"$FAULT_LOG")"
    check_eq "the same worker throughout" "$workers" "$(children_of "$SERVER_PID")"
    # The log once the worker is gone: lines it held back (rate limit) are written by then.
    stop_server
    check_eq "accept faults: SIGTERM exit status" 0 "$SERVER_STATUS"
    check_match "accept4 ENOBUFS: logged" \
        'accept on listening socket: No buffer space available' "$(cat "$SERVER_LOG")"
    check_eq "accept4 ECONNABORTED: not logged (the client gave up)" 0 \
        "$(grep -c 'Software caused connection abort' "$SERVER_LOG")"
    check_match "TCP_NODELAY failing: warned, naming the connection" \
        'setsockopt tcp_nodelay on connection fd [0-9]+: Protocol not available' \
        "$(cat "$SERVER_LOG")"
}

case "$CASE" in
startup | nofile | sighup | grace | worker_quit | master_quit | no_spare | trace_gone | fork_fails | \
    no_memory | accept)
    "case_$CASE"
    ;;
*)
    echo "usage: e2e_process.sh startup|nofile|sighup|grace|worker_quit|master_quit|no_spare|trace_gone|fork_fails|no_memory|accept" >&2
    exit 2
    ;;
esac
e2e_finish
