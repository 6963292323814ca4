#!/usr/bin/env bash
# e2e_client.sh - clientemulator and tools/demo against real and fake servers on 127.0.0.1.
#
#   e2e_client.sh CASE FAKE_HTTP_SERVER
#
# Environment (from meson's test_env): TASKSERVER TASKCTL CLIENTEMULATOR LOCKING SOURCE_ROOT
# BUILD_ROOT. Exit 0 pass, 1 fail, 77 skip (with the reason on stderr).
#
# fail() ends the test, also when it runs in a $(...) subshell, where its exit ends only
# the subshell: it leaves $TMP/.failed behind, and the EXIT trap turns any exit status
# into 1 when that file is there. Helpers whose result a check needs set a variable
# (json_get, wait_listening) instead of printing it into a $(...). The scratch dir is
# under the build dir and removed on every exit (a failure, meson's SIGTERM included).
set -u
CASE=${1:?case}
FAKE=${2:?fake_http_server path}
: "${TASKSERVER:?}" "${TASKCTL:?}" "${CLIENTEMULATOR:?}" "${LOCKING:?}" "${SOURCE_ROOT:?}"
# clientemulator reads these; the cases set them where they test them.
unset SERVER_URL TASKS CONCURRENCY CLIENT_ID

SCRATCH=${TMPDIR:-/tmp}
[ -n "${BUILD_ROOT:-}" ] && mkdir -p "$BUILD_ROOT/test-tmp" 2>/dev/null && SCRATCH=$BUILD_ROOT/test-tmp
TMP=$(mktemp -d "$SCRATCH/e2e_client.XXXXXX") || exit 1
PIDS=()
GROUPS_RUN=() # process groups of bg_run, outside meson's: ended here, by SIGTERM
SIGNALLED=0
cleanup() {
    local rc=$? p c
    [ -e "$TMP/.failed" ] && [ "$rc" -eq 0 ] && rc=1
    # A tools/demo still running cleans up after itself on SIGTERM (in about 2 s; its
    # group is not meson's, so no SIGKILL cuts that short).
    for p in "${GROUPS_RUN[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        if [ "$SIGNALLED" = 1 ]; then
            # meson's SIGKILL follows its SIGTERM within 0.5 s: no waiting for graceful exits.
            for c in $(pgrep -P "$p" 2>/dev/null); do kill -KILL "$c" 2>/dev/null; done
            kill -KILL "$p" 2>/dev/null
        else
            kill -TERM "$p" 2>/dev/null
        fi
    done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'SIGNALLED=1; echo "[$CASE] interrupted by a signal: cleaning up" >&2; exit 130' INT TERM

fail() {
    echo "FAIL [$CASE]: $*" >&2
    : >>"$TMP/.failed"
    for f in "$TMP"/*.err "$TMP"/*.out; do
        [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
    done
    exit 1
}

# json FILE EXPR: prints EXPR evaluated on the JSON object in FILE (bound to j). Inside
# "$(...)" a failure ends only the subshell (the test still fails, see fail): where the
# value decides what is checked next, use json_get.
json() {
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" ||
        fail "$1 is not the JSON expected: $(head -c 300 "$1")"
}

# json_get VAR FILE EXPR [int]: sets VAR to json's value, in this shell (a failure
# ends the test here); with "int", the value must be a non-negative integer.
json_get() {
    local v
    v=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$2" "$3") || fail "$2 is not the JSON expected: $(head -c 300 "$2")"
    if [ "${4:-}" = int ] && ! [[ "$v" =~ ^[0-9]+$ ]]; then
        fail "$2: $3 is '$v', not a count"
    fi
    printf -v "$1" '%s' "$v"
}
# Variables set only through json_get (for shellcheck).
quick="" elapsed="" sent="" missing="" ready="" spans="" shared=""

# expect WHAT GOT WANT
expect() { [ "$2" = "$3" ] || fail "$1: expected $3, got $2"; }

# wait_listening ERRFILE: sets LISTEN_PORT from "listening on 127.0.0.1:PORT" (10 s at most).
wait_listening() {
    local i port
    for i in $(seq 1 100); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$1" | head -n 1)
        [ -n "$port" ] && { LISTEN_PORT=$port; return 0; }
        sleep 0.1
    done
    fail "no 'listening on' line in $1 after 10 s"
}

# start_fake MODE [ARGS...]: sets URL and FAKE_PID.
start_fake() {
    "$FAKE" --mode "$@" --max-seconds 120 2>"$TMP/fake.err" &
    FAKE_PID=$!
    PIDS+=("$FAKE_PID")
    wait_listening "$TMP/fake.err"
    URL="http://127.0.0.1:$LISTEN_PORT"
}

# stop_fake: stops the fake and sets POSTS to how many complete POSTs it received (its last
# line). Not in a $(...) subshell: only this shell can wait for the fake to finish writing.
stop_fake() {
    kill -TERM "$FAKE_PID" 2>/dev/null
    wait "$FAKE_PID" 2>/dev/null
    POSTS=$(sed -n 's/^fake_http_server: \([0-9][0-9]*\) posts$/\1/p' "$TMP/fake.err" | tail -n 1)
}

# start_server [ARGS...]: taskserver with 4 workers on a fresh file; sets URL, FILE, SERVER_PID.
start_server() {
    FILE="$TMP/tasks.json"
    "$TASKSERVER" --port 0 --bind 127.0.0.1 --workers 4 --file "$FILE" --quiet "$@" \
        2>"$TMP/server.err" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    wait_listening "$TMP/server.err"
    URL="http://127.0.0.1:$LISTEN_PORT"
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null
    local i
    for i in $(seq 1 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$SERVER_PID" 2>/dev/null && fail "taskserver $SERVER_PID still running 10 s after SIGTERM"
    wait "$SERVER_PID" 2>/dev/null
}

# bg_run SECONDS OUT ERR COMMAND...: runs COMMAND in its own process group (as a
# terminal would), stdout to OUT and stderr to ERR, and waits at most SECONDS for it; its
# exit status in RC ("timeout" after SIGTERM and, 2 s later, SIGKILL to its group). In the
# background, so that meson's SIGTERM on a timeout reaches our trap at once instead of
# after the command (a shell runs traps only between foreground commands).
bg_run() {
    local secs=$1 out=$2 err=$3 pid i
    shift 3
    set -m
    "$@" >"$out" 2>"$err" &
    pid=$!
    set +m
    GROUPS_RUN+=("$pid")
    for ((i = 0; i < secs * 10; i++)); do
        [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ "$i" -ge $((secs * 10)) ]; then
        kill -TERM -- "-$pid" 2>/dev/null
        sleep 2
        kill -KILL -- "-$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        RC=timeout
    else
        wait "$pid"
        RC=$?
    fi
    unset 'GROUPS_RUN[-1]'
}

# ce NAME ARGS...: runs clientemulator, stdout to NAME.out, stderr to NAME.err; sets RC.
ce() {
    local name=$1
    shift
    "$CLIENTEMULATOR" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    RC=$?
}

# run_clients ID_PREFIX N TASKS CONCURRENCY: N clientemulators at once against $URL, ids
# ID_PREFIX1..N, output in c1.out, c1.err, ...; sets codes to " RC1 RC2 ...".
run_clients() {
    local prefix=$1 n=$2 tasks=$3 conc=$4 i p pids=()
    for i in $(seq 1 "$n"); do
        "$CLIENTEMULATOR" --url "$URL" --id "$prefix$i" --tasks "$tasks" --concurrency "$conc" \
            --wait 10 --timeout 60 --json >"$TMP/c$i.out" 2>"$TMP/c$i.err" &
        pids+=($!)
        PIDS+=($!) # killed on exit if the script stops early
    done
    codes=""
    for p in "${pids[@]}"; do
        wait "$p"
        codes="$codes $?"
    done
}

# locked_rows FILE: the "locked" rows of a demo table as "sent acked stored lost dup valid".
locked_rows() {
    grep '^| locked ' "$1" | awk -F'|' '{
        for (i = 2; i <= 10; i++) gsub(/ /, "", $i)
        print $5, $6, $7, $8, $9, $10 }'
}

# fake_case MODE TASKS REFUSED RESET HTTP500 TIMEOUT [CLIENTEMULATOR ARGS...]: a misbehaving
# server; every task fails, counted by kind; exit 1. The fake must have received exactly the
# POSTs that reached it (sent minus refused): one more would be a retry.
fake_case() {
    local mode=$1 tasks=$2 refused=$3 reset=$4 http500=$5 timeout=$6
    shift 6
    start_fake "$mode"
    ce c --url "$URL" --id fk --tasks "$tasks" --concurrency 4 --wait 5 --timeout 10 --json "$@"
    expect "exit code against a '$mode' server" "$RC" 1
    expect "sent" "$(json "$TMP/c.out" 'j["sent"]')" "$tasks"
    expect "acknowledged" "$(json "$TMP/c.out" 'j["acknowledged"]')" 0
    expect "failed" "$(json "$TMP/c.out" 'j["failed"]')" "$tasks"
    expect "refused" "$(json "$TMP/c.out" 'j["errors"]["refused"]')" "$refused"
    expect "reset" "$(json "$TMP/c.out" 'j["errors"]["reset"]')" "$reset"
    expect "http 500" "$(json "$TMP/c.out" 'j["errors"]["http"].get("500",0)')" "$http500"
    expect "timeout" "$(json "$TMP/c.out" 'j["errors"]["timeout"]')" "$timeout"
    expect "other" "$(json "$TMP/c.out" 'j["errors"]["other"]')" 0
    grep -q "failed.*$URL/tareas\|$URL/tareas.*failed" "$TMP/c.err" ||
        fail "stderr does not name the failing URL $URL/tareas"
    stop_fake
    expect "POSTs the '$mode' server received (sent - refused)" "$POSTS" $((tasks - refused))
}

# tty_run OUT COMMAND...: runs COMMAND with stdin, stdout and stderr on a pseudo-terminal
# (script(1)); everything it wrote to the terminal goes to OUT. Sets RC.
tty_run() {
    local out=$1 cmd="" a
    shift
    for a in "$@"; do cmd="$cmd $(printf '%q' "$a")"; done
    SHELL=/bin/bash bg_run 60 "$out" "$out.stderr" script -qec "$cmd" /dev/null </dev/null
    cat "$out.stderr" >>"$out"
}

case "$CASE" in
args)
    for bad in "--url not-a-url" "--url ftp://127.0.0.1:9000" "--url http://" "--tasks abc" \
        "--tasks -1" "--concurrency 0" "--wait x" "--timeout 0" "--bogus" "extra"; do
        # shellcheck disable=SC2086
        ce c $bad --wait 0
        expect "exit code of clientemulator $bad" "$RC" 2
        [ -s "$TMP/c.err" ] || fail "clientemulator $bad: no message on stderr"
    done
    # Refusals with their reasons: the message must say what was wrong.
    long=$(printf 'a%.0s' $(seq 1 3000))
    while IFS='|' read -r args want; do
        # shellcheck disable=SC2086
        ce c $args
        expect "exit code of clientemulator $args" "$RC" 2
        grep -q -- "$want" "$TMP/c.err" ||
            fail "clientemulator $args: stderr does not say '$want': $(cat "$TMP/c.err")"
    done <<EOF2
--burst 0 --wait 0|--burst .0.: expected a whole number from 1 to 10000
--wait 0 --url|option --url: needs a value
--barrier $TMP/b --wait 0|--barrier $TMP/b: needs --clients K
--barrier $TMP/b --clients 0 --wait 0|--clients .0.: expected a whole number
--barrier $TMP/b --clients 2 --verify-only --wait 0|--barrier: only for a client that sends
--health --verify-file $TMP/x --wait 0|--verify-file $TMP/x: not with --health
--metrics http://127.0.0.1:1/$long/metrics --wait 0|--metrics: bad url .*: too long
EOF2
    TASKS=zz ce c --wait 0
    expect "exit code with TASKS=zz" "$RC" 2
    grep -q 'TASKS' "$TMP/c.err" || fail "TASKS=zz: the message does not name TASKS"
    ce c --help
    expect "--help" "$RC" 0
    ce c --version
    expect "--version" "$RC" 0
    grep -q '^clientemulator ' "$TMP/c.out" || fail "--version prints no version line"
    ;;
unreachable)
    # Port 1 on loopback: privileged, nothing listens there in a test environment.
    start=$(date +%s%N)
    ce c --url http://127.0.0.1:1 --tasks 5 --wait 2
    elapsed_ms=$((($(date +%s%N) - start) / 1000000))
    expect "exit code with no server" "$RC" 3
    [ "$elapsed_ms" -ge 1800 ] && [ "$elapsed_ms" -le 10000 ] ||
        fail "--wait 2 took $elapsed_ms ms"
    grep -q 'not ready after.*127.0.0.1:1' "$TMP/c.err" ||
        fail "the message does not say what failed and where: $(cat "$TMP/c.err")"
    ce h --url http://127.0.0.1:1 --health
    expect "--health with no server" "$RC" 3
    ;;
health)
    start_fake ok
    ce h --url "$URL" --health
    expect "--health against a healthy server" "$RC" 0
    ce h --url "$URL/" --health --quiet
    expect "--health with a trailing slash" "$RC" 0
    ;;
barrier_solo)
    # A barrier of one: it meets itself, starts, and says it overlapped with nobody; --json
    # carries the same in its "barrier" object. An id that cannot name a file is refused.
    start_fake ok
    ce b --url "$URL" --id solo --tasks 3 --barrier "$TMP/b1" --clients 1 --wait 5
    expect "exit code of a barrier of one" "$RC" 0
    grep -q '^barrier: 1 of 1 clients ready, all started at ' "$TMP/b.out" ||
        fail "no barrier line: $(cat "$TMP/b.out")"
    grep -q '^overlap: no other client reported its span$' "$TMP/b.out" ||
        fail "no overlap line: $(cat "$TMP/b.out")"
    [ -f "$TMP/b1/ready/solo" ] && [ -f "$TMP/b1/done/solo" ] ||
        fail "the barrier files are not there: $(find "$TMP/b1" | tr '\n' ' ')"
    ce j --url "$URL" --id solo --tasks 3 --barrier "$TMP/b2" --clients 1 --wait 5 --json
    expect "exit code of a barrier of one, --json" "$RC" 0
    json_get ready "$TMP/j.out" 'j["barrier"]["ready"]' int
    expect "barrier.ready" "$ready" 1
    json_get spans "$TMP/j.out" 'j["barrier"]["spans"]' int
    expect "barrier.spans" "$spans" 1
    json_get shared "$TMP/j.out" 'j["barrier"]["shared_ms"] == 0 and j["barrier"]["all_ms"] == j["barrier"]["mine_ms"]'
    expect "alone: nothing shared, all of its span its own" "$shared" True
    ce x --url "$URL" --id .x --tasks 3 --barrier "$TMP/b3" --clients 1 --wait 5
    expect "exit code with an id that cannot name a file" "$RC" 2
    grep -q -- '--barrier: client id ".x": cannot name a barrier file' "$TMP/x.err" ||
        fail "the refusal does not say why: $(cat "$TMP/x.err")"
    stop_fake
    expect "POSTs the fake received" "$POSTS" 6
    ;;
fake_500) fake_case 500 20 0 0 20 0 ;;
fake_close) fake_case close 20 0 20 0 0 ;;
fake_partial) fake_case partial 20 0 20 0 0 ;;
fake_mixed) fake_case mixed 20 0 10 10 0 ;;
fake_timeout)
    # A server that reads every POST and never answers: 4 in flight, each times out.
    fake_case hang 4 0 0 0 4 --timeout 0.5
    # fake_case passes --timeout 10 first: sending done in under 5 s proves 0.5 was applied.
    json_get quick "$TMP/c.out" 'int(j["elapsed_s"] < 5)'
    json_get elapsed "$TMP/c.out" 'j["elapsed_s"]'
    [ "$quick" = 1 ] || fail "--timeout 0.5: 4 requests in flight took $elapsed s"
    ;;
fake_refused)
    # /health answers, then the port is closed: every POST is refused, none reaches it.
    fake_case refuse-posts 6 6 0 0 0
    ;;
fake_close_second)
    # Each connection: the first POST 201, the second read and closed without an answer.
    # libcurl on its own would send that POST again on a fresh connection (20 tasks made
    # 34 POSTs); clientemulator must not: exactly one POST per task, the unanswered ones
    # counted as reset.
    for conc in 4 1; do
        start_fake close-second
        ce c --url "$URL" --id fk --tasks 20 --concurrency "$conc" --wait 5 --timeout 10 --json
        stop_fake
        expect "exit code against a close-second server (concurrency $conc)" "$RC" 1
        json_get sent "$TMP/c.out" 'j["sent"]' int
        expect "sent (concurrency $conc)" "$sent" 20
        expect "POSTs the fake received = sent (concurrency $conc): no request sent twice" \
            "$POSTS" "$sent"
        json_get acked "$TMP/c.out" 'j["acknowledged"]' int
        json_get reset "$TMP/c.out" 'j["errors"]["reset"]' int
        expect "failed = reset (concurrency $conc)" "$(json "$TMP/c.out" 'j["failed"]')" "$reset"
        expect "acknowledged + reset (concurrency $conc)" $((acked + reset)) 20
        [ "$reset" -ge 1 ] || fail "concurrency $conc: no connection was reused, nothing tested"
        # One connection at a time: strictly first, second, first, second...
        [ "$conc" = 4 ] || expect "reset with one connection" "$reset" 10
        grep -q 'closed a reused connection without answering' "$TMP/c.err" ||
            fail "stderr does not say what happened: $(cat "$TMP/c.err")"
    done
    ;;
env)
    # SERVER_URL, TASKS, CONCURRENCY, CLIENT_ID are read; each flag wins over its variable.
    start_fake ok
    SERVER_URL=$URL TASKS=3 CONCURRENCY=2 CLIENT_ID=envid ce e --wait 5 --json
    expect "exit code with the environment" "$RC" 0
    expect "url from SERVER_URL" "$(json "$TMP/e.out" 'j["url"]')" "$URL"
    expect "tasks from TASKS" "$(json "$TMP/e.out" 'j["tasks"]')" 3
    expect "sent" "$(json "$TMP/e.out" 'j["sent"]')" 3
    expect "concurrency from CONCURRENCY" "$(json "$TMP/e.out" 'j["concurrency"]')" 2
    expect "id from CLIENT_ID" "$(json "$TMP/e.out" 'j["id"]')" envid
    SERVER_URL=http://127.0.0.1:1 TASKS=7 CONCURRENCY=3 CLIENT_ID=envid \
        ce f --url "$URL" --tasks 2 --concurrency 1 --id flagid --wait 5 --json
    expect "exit code, flags over the environment" "$RC" 0
    expect "--url over SERVER_URL" "$(json "$TMP/f.out" 'j["url"]')" "$URL"
    expect "--tasks over TASKS" "$(json "$TMP/f.out" 'j["tasks"]')" 2
    expect "--concurrency over CONCURRENCY" "$(json "$TMP/f.out" 'j["concurrency"]')" 1
    expect "--id over CLIENT_ID" "$(json "$TMP/f.out" 'j["id"]')" flagid
    # A bad value that a flag replaces is never judged...
    long=$(printf 'x%.0s' $(seq 1 200))
    SERVER_URL=not-a-url TASKS=zz CONCURRENCY=0 CLIENT_ID=$long \
        ce g --url "$URL" --tasks 1 --concurrency 1 --id ok --wait 5 --json
    expect "exit code, bad environment values replaced by flags" "$RC" 0
    # ...and one that is used is a usage error naming the variable.
    for bad in "TASKS=zz" "TASKS=-1" "CONCURRENCY=0" "CONCURRENCY=x" "CLIENT_ID=$long" \
        "SERVER_URL=not-a-url"; do
        # A URL on 127.0.0.1 where nothing listens (the bad value, when it is SERVER_URL,
        # comes after and wins): nothing is sent anywhere else if the check ever broke.
        env SERVER_URL=http://127.0.0.1:1 "$bad" "$CLIENTEMULATOR" --wait 0 >"$TMP/b.out" \
            2>"$TMP/b.err"
        RC=$?
        expect "exit code with ${bad:0:40}" "$RC" 2
        grep -q "environment ${bad%%=*}" "$TMP/b.err" ||
            fail "${bad:0:40}: the message does not name ${bad%%=*}: $(cat "$TMP/b.err")"
    done
    # No CLIENT_ID and no --id: the host name (each container has its own).
    host=$(python3 -c 'import socket; print(socket.gethostname())')
    env -u CLIENT_ID "$CLIENTEMULATOR" --url "$URL" --tasks 1 --wait 5 --json \
        >"$TMP/h.out" 2>"$TMP/h.err"
    expect "exit code with the default id" "$?" 0
    expect "default id = host name" "$(json "$TMP/h.out" 'j["id"]')" "$host"
    # An id JSON must escape (quote, backslash, tab, UTF-8) reaches the server as given, in
    # each task's cliente and titulo, and --json prints it as given.
    start_server
    id=$'q"b\\s\tx\xc3\xa9'
    ce q --url "$URL" --tasks 2 --concurrency 1 --id "$id" --wait 5 --json
    expect "exit code with an id JSON must escape" "$RC" 0
    ID=$id python3 - "$TMP/q.out" "$FILE" <<'PY' || fail "the escaped id did not come through"
import json, os, sys
want = os.environ["ID"]
got = json.load(open(sys.argv[1]))["id"]
if got != want:
    sys.exit(f"--json id: expected {want!r}, got {got!r}")
tasks = json.load(open(sys.argv[2]))
if sorted((t["cliente"], t["titulo"]) for t in tasks) != [(want, f"{want}-{i}") for i in (1, 2)]:
    sys.exit(f"stored: expected cliente {want!r} and titulo {want!r}-1, -2, got {tasks!r}")
PY
    ;;
progress)
    # The bar is drawn only when both stdout and stderr are a terminal, and not with --json.
    start_fake ok
    bar='\[#\{40\}\] 50/50 acked 50 failed 0'
    any_frame='\] [0-9]*/50 acked [0-9]* failed'   # a frame of the bar, however far along
    ce p --url "$URL" --id pb --tasks 50 --wait 5
    expect "exit code, piped" "$RC" 0
    ! grep -q "$any_frame" "$TMP/p.err" "$TMP/p.out" || fail "a progress bar on a pipe"
    command -v script >/dev/null 2>&1 || {
        echo "skip: no script(1) to run clientemulator on a terminal (util-linux);" \
            "the piped check passed" >&2
        exit 77
    }
    tty_run "$TMP/tty.out" "$CLIENTEMULATOR" --url "$URL" --id pb --tasks 50 --wait 5
    expect "exit code on a terminal" "$RC" 0
    grep -q "$bar" "$TMP/tty.out" || fail "no progress bar on a terminal: $(cat -v "$TMP/tty.out")"
    grep -q 'sent 50, acknowledged (201) 50' "$TMP/tty.out" || fail "no summary on a terminal"
    tty_run "$TMP/tty_json.out" "$CLIENTEMULATOR" --url "$URL" --id pb --tasks 50 --wait 5 --json
    expect "exit code on a terminal with --json" "$RC" 0
    ! grep -q "$any_frame" "$TMP/tty_json.out" || fail "a progress bar with --json"
    # stderr on the terminal, stdout captured: no bar either.
    # shellcheck disable=SC2016 # expanded by that sh, not here
    tty_run "$TMP/tty_pipe.out" sh -c '"$0" --url "$1" --id pb --tasks 50 --wait 5 >"$2"' \
        "$CLIENTEMULATOR" "$URL" "$TMP/tty_pipe.summary"
    expect "exit code with stdout captured" "$RC" 0
    ! grep -q "$any_frame" "$TMP/tty_pipe.out" "$TMP/tty_pipe.summary" ||
        fail "a progress bar with stdout captured"
    grep -q 'sent 50, acknowledged (201) 50' "$TMP/tty_pipe.summary" ||
        fail "no summary in the captured stdout"
    ;;
verify_file)
    # --verify-file: the check reads the server's file itself. A clean run passes and says
    # where it looked.
    start_server
    ce c --url "$URL" --id f --tasks 40 --concurrency 8 --verify-file "$FILE" --json
    expect "exit code of --verify-file after a clean run" "$RC" 0
    expect "verified_in" "$(json "$TMP/c.out" 'j["verified_in"]')" "$FILE"
    expect "stored, --verify-file" "$(json "$TMP/c.out" 'j["verify"]["stored"]')" 40
    # A file the server refuses to serve (bytes after its "]": GET /tareas answers 500 and
    # /health 503) is still read, record by record: all 40 found, and the damage reported.
    printf '{"id":41,"tit' >>"$FILE"
    ce h --url "$URL" --id f --tasks 40 --verify-only --wait 1
    expect "exit code of --verify-only over HTTP on a damaged file" "$RC" 3
    ce d --url "$URL" --id f --tasks 40 --verify-only --verify-file "$FILE" --json
    expect "exit code of --verify-file on a damaged file" "$RC" 1
    expect "stored, damaged file" "$(json "$TMP/d.out" 'j["verify"]["stored"]')" 40
    expect "missing, damaged file" "$(json "$TMP/d.out" 'j["verify"]["missing"]')" 0
    expect "damaged lines" "$(json "$TMP/d.out" 'j["verify"]["damaged_lines"]')" 1
    grep -q "verify $FILE: 0 of this client's acknowledged tasks lost" "$TMP/d.err" ||
        fail "stderr does not name $FILE: $(cat "$TMP/d.err")"
    stop_server
    # A lost task, counted exactly with no server at all (port 1: nothing answers there).
    grep -v '"seq":7,' "$FILE" >"$TMP/lost.json"
    ce l --url http://127.0.0.1:1 --wait 0 --id f --tasks 40 --verify-only \
        --verify-file "$TMP/lost.json" --json
    expect "exit code of --verify-file with seq 7 gone" "$RC" 1
    expect "missing, seq 7 gone" "$(json "$TMP/l.out" 'j["verify"]["missing"]')" 1
    expect "missing_first, seq 7 gone" "$(json "$TMP/l.out" 'j["verify"]["missing_first"]')" "[7]"
    # A file that is not there, or a folder: refused before anything is sent (exit 2), the
    # message names it.
    start_fake ok
    ce n --url "$URL" --id f --tasks 4 --verify-file "$TMP/none.json"
    expect "exit code of --verify-file on a missing file" "$RC" 2
    grep -q "$TMP/none.json: No such file or directory" "$TMP/n.err" ||
        fail "the message does not name the file: $(cat "$TMP/n.err")"
    ce n --url "$URL" --id f --tasks 4 --verify-file "$TMP"
    expect "exit code of --verify-file on a folder" "$RC" 2
    grep -q "$TMP: not a regular file" "$TMP/n.err" ||
        fail "the message does not say what is wrong: $(cat "$TMP/n.err")"
    stop_fake
    expect "POSTs sent with a --verify-file that cannot be read" "$POSTS" 0
    ;;
verify_damaged)
    # The list a damaged unlocked store could serve: seq 3 and 5 missing, 2 doubled,
    # id 4 twice, a record cut short, garbage after the closing bracket.
    cat >"$TMP/list.json" <<'LIST'
[
{"id":1,"titulo":"v-1","cliente":"v","seq":1,"creada":"2026-11-26T15:00:00Z","pid":1},
{"id":2,"titulo":"v-2","cliente":"v","seq":2,"creada":"2026-11-26T15:00:00Z","pid":1},
{"id":3,"titulo":"other-3","cliente":"other","seq":3,"creada":"2026-11-26T15:00:00Z","pid":1},
{"id":4,"titulo":"v-2","cliente":"v","seq":2,"creada":"2026-11-26T15:00:00Z","pid":2},
{"id":4,"titulo":"v-4","cliente":"v","seq":4,"creada":"2026-11-26T15:00:00Z","pid":2},
{"id":6,"titulo":"v-5","cliente":"v","se
{"id":7,"titulo":"v-6","cliente":"v","seq":6,"creada":"2026-11-26T15:00:00Z","pid":1}
]
LIST
    start_fake ok --list "$TMP/list.json"
    ce c --url "$URL" --id v --tasks 6 --concurrency 3 --wait 5 --verify --json
    expect "exit code of --verify on a damaged list" "$RC" 1
    expect "acknowledged" "$(json "$TMP/c.out" 'j["acknowledged"]')" 6
    expect "records" "$(json "$TMP/c.out" 'j["verify"]["records"]')" 6
    expect "missing" "$(json "$TMP/c.out" 'j["verify"]["missing"]')" 2
    expect "missing_first" "$(json "$TMP/c.out" 'j["verify"]["missing_first"]')" "[3, 5]"
    expect "doubled_first" "$(json "$TMP/c.out" 'j["verify"]["doubled_first"]')" "[2]"
    expect "duplicate_ids_first" "$(json "$TMP/c.out" 'j["verify"]["duplicate_ids_first"]')" "[4]"
    expect "out_of_order" "$(json "$TMP/c.out" 'j["verify"]["out_of_order"]')" 1
    expect "damaged_lines" "$(json "$TMP/c.out" 'j["verify"]["damaged_lines"]')" 1
    grep -q "verify $URL/tareas" "$TMP/c.err" || fail "stderr does not name $URL/tareas"
    # The text report lists the seq numbers; --verify-only counts 1..N as acknowledged.
    ce t --url "$URL" --id v --tasks 6 --verify-only
    expect "exit code of --verify-only" "$RC" 1
    grep -q 'missing seq (first 20): 3 5$' "$TMP/t.out" || fail "text report: $(cat "$TMP/t.out")"
    grep -q 'damaged lines: 1, the first at line 7' "$TMP/t.out" ||
        fail "text report: $(cat "$TMP/t.out")"
    # A "]" in the middle and records after it (writers without the lock leave that): the
    # lines after it are damage, and the records on them are still found. The record cut
    # short there is wrong three ways (after the "]", no ',' before it, cut): one line.
    printf '[\n{"id":1,"cliente":"m","seq":1,"titulo":"m-1"}\n]\n{"id":2,"cliente":"m","seq":2,"titulo":"m-2"},\n{"id":3,"cliente":"m","seq":3,"titulo":"m-3"}\n{"id":4,"cliente":"m","se\n]\n' \
        >"$TMP/mid.json"
    kill -TERM "${PIDS[-1]}"
    start_fake ok --list "$TMP/mid.json"
    ce m --url "$URL" --id m --tasks 3 --verify-only --json
    expect "exit code of --verify-only, records after a stray ']'" "$RC" 1
    expect "records after a stray ']'" "$(json "$TMP/m.out" 'j["verify"]["records"]')" 3
    expect "missing, records after a stray ']'" "$(json "$TMP/m.out" 'j["verify"]["missing"]')" 0
    expect "damaged lines after a stray ']'" \
        "$(json "$TMP/m.out" 'j["verify"]["damaged_lines"]')" 4
    # A clean list of the same client passes.
    printf '[\n{"id":1,"cliente":"w","seq":1,"titulo":"w-1"},\n{"id":2,"cliente":"w","seq":2,"titulo":"w-2"}\n]\n' \
        >"$TMP/ok.json"
    kill -TERM "${PIDS[-1]}"
    start_fake ok --list "$TMP/ok.json"
    ce c --url "$URL" --id w --tasks 2 --verify --json
    expect "exit code of --verify on a clean list" "$RC" 0
    # The same list cut short before its closing bracket: every record there, and still not
    # a whole list (found by tools/mutate: verify-ok-ignores-close).
    head -n 3 "$TMP/ok.json" >"$TMP/cut.json"
    kill -TERM "${PIDS[-1]}"
    start_fake ok --list "$TMP/cut.json"
    ce k --url "$URL" --id w --tasks 2 --verify --json
    expect "exit code of --verify on a list without its closing bracket" "$RC" 1
    ;;
load_8x500)
    # LOCKING=1: all exit 0 and the file verifies with 4000 tasks. LOCKING=0: a race
    # window makes the unlocked store lose tasks, and the checks must see it. There, once
    # the race has damaged the file, GET /health answers 503 ("damaged"): a client that
    # starts its health wait after that gives up (exit 3, "not ready ... 503") and has no
    # result, which is counted as such, never read as a result.
    if [ "$LOCKING" = 1 ]; then start_server; else start_server --race-window-us 1000; fi
    run_clients load 8 500 50
    acked=0 not_ready=0
    # not_ready_client FILE: the client gave up on a 503 from /health (unlocked build only).
    not_ready_client() {
        [ "$LOCKING" = 0 ] && grep -q 'not ready after .* answered HTTP 503' "$1"
    }
    for i in 1 2 3 4 5 6 7 8; do
        if not_ready_client "$TMP/c$i.err"; then
            not_ready=$((not_ready + 1))
            continue
        fi
        json_get n "$TMP/c$i.out" 'j["acknowledged"]' int
        acked=$((acked + n))
    done
    lost=0 verified=0
    # Each client's check in the file itself: the unlocked server may find the file damaged
    # by its first collisions and refuse to serve it (/health 503), and the check must still
    # count every record that can be read.
    for i in 1 2 3 4 5 6 7 8; do
        ce v$i --url "$URL" --id "load$i" --tasks 500 --verify-only --verify-file "$FILE" --json
        json_get n "$TMP/v$i.out" 'j["verify"]["missing"]' int
        lost=$((lost + n))
        verified=$((verified + 1))
    done
    stop_server
    "$TASKCTL" -f "$FILE" verify --expect 4000 >"$TMP/verify.out" 2>"$TMP/verify.err"
    vrc=$?
    if [ "$LOCKING" = 1 ]; then
        expect "exit codes of the 8 clients" "$codes" " 0 0 0 0 0 0 0 0"
        expect "acknowledged" "$acked" 4000
        expect "lost (clientemulator --verify-only)" "$lost" 0
        expect "taskctl verify --expect 4000 exit code" "$vrc" 0
    else
        [ "$not_ready" -lt 8 ] || fail "unlocked: no client got past /health"
        expect "unlocked: --verify-file checks that ran" "$verified" 8
        [ "$lost" -gt 0 ] || fail "unlocked build with a race window: no loss detected"
        expect "taskctl verify --expect 4000 exit code (unlocked)" "$vrc" 1
        echo "unlocked: $acked acknowledged, $lost lost ($verified clients verified;" \
            "$not_ready clients found the file damaged before they started)" >&2
    fi
    ;;
race)
    # Four clients at once (one client's connections may all land on one worker), 4 workers,
    # a race window: the unlocked store loses tasks and --verify must say so (exit 1, "lost"
    # on stderr); the locked store loses none (every client exits 0).
    start_server --race-window-us 1000
    pids=()
    for i in 1 2 3 4; do
        "$CLIENTEMULATOR" --url "$URL" --id "race$i" --tasks 200 --concurrency 25 --wait 10 \
            --timeout 60 --verify --json >"$TMP/c$i.out" 2>"$TMP/c$i.err" &
        pids+=($!)
        PIDS+=($!)
    done
    detected=0
    for i in 1 2 3 4; do
        wait "${pids[$((i - 1))]}"
        rc=$?
        if [ "$LOCKING" = 1 ]; then
            json_get missing "$TMP/c$i.out" 'j["verify"]["missing"]' int
            expect "client $i exit code (locked, race window)" "$rc" 0
            expect "client $i acknowledged (locked)" "$(json "$TMP/c$i.out" 'j["acknowledged"]')" 200
            expect "client $i missing (locked)" "$missing" 0
            continue
        fi
        # Unlocked: the list may change while it is streamed (other clients still append),
        # and then the server cuts it short: no verdict ("verify": null), which the client
        # must report as a failure too.
        json_get missing "$TMP/c$i.out" '"none" if j["verify"] is None else j["verify"]["missing"]'
        if [ "$missing" = none ]; then
            expect "client $i exit code when its list could not be read whole" "$rc" 1
            grep -q "error: verify" "$TMP/c$i.err" ||
                fail "client $i: no verify error on stderr: $(cat "$TMP/c$i.err")"
        elif ! [[ "$missing" =~ ^[0-9]+$ ]]; then
            fail "client $i: verify.missing is '$missing', not a count"
        elif [ "$missing" -gt 0 ]; then
            expect "client $i exit code with $missing lost" "$rc" 1
            grep -q "lost" "$TMP/c$i.err" || fail "client $i: no 'lost' message on stderr"
            detected=$((detected + 1))
        fi
    done
    [ "$LOCKING" = 1 ] || [ "$detected" -gt 0 ] ||
        fail "unlocked build with a race window: no client's --verify detected a loss"
    ;;
demo)
    if [ "$LOCKING" = 1 ]; then
        locked=${BUILD_ROOT:-$(dirname "$(dirname "$TASKSERVER")")}
        unlocked=${DEMO_UNLOCKED_DIR:-$SOURCE_ROOT/build-nolock}
    else
        unlocked=${BUILD_ROOT:-$(dirname "$(dirname "$TASKSERVER")")}
        locked=${DEMO_LOCKED_DIR:-$SOURCE_ROOT/build}
    fi
    for d in "$locked" "$unlocked"; do
        for p in taskserver clientemulator; do
            [ -x "$d/src/$p" ] || {
                echo "skip: the demo needs both builds; $d/src/$p is not built" \
                    "(set DEMO_LOCKED_DIR / DEMO_UNLOCKED_DIR)" >&2
                exit 77
            }
        done
    done
    DEMO_LOCKED_DIR=$locked DEMO_UNLOCKED_DIR=$unlocked \
        bg_run 500 "$TMP/demo.out" "$TMP/demo.err" "$SOURCE_ROOT/tools/demo" --rounds 3
    cat "$TMP/demo.out"
    expect "tools/demo exit code" "$RC" 0
    summary=$(grep '^summary:' "$TMP/demo.out") || fail "no summary line in the demo's output"
    echo "$summary" | grep -q ' locked_lost=0 ' || fail "locked build lost tasks: $summary"
    echo "$summary" | grep -q ' locked_failed_rounds=0/3 ' ||
        fail "locked build failed a round: $summary"
    echo "$summary" | grep -q ' locked_client_failures=0 ' ||
        fail "a client of the locked build exited non-zero: $summary"
    ul=$(echo "$summary" | sed -n 's/.* unlocked_lost=\([0-9]*\) .*/\1/p')
    [ -n "$ul" ] && [ "$ul" -gt 0 ] || fail "unlocked build lost nothing in 3 rounds: $summary"
    # Each locked row, column by column: 2 clients x 100 tasks all sent, acknowledged and
    # stored, none lost, no duplicate id, valid JSON. (A server that refused every task
    # would show 0 lost too: the numbers are what proves the promise.)
    rows=$(locked_rows "$TMP/demo.out")
    expect "locked rows: sent acked stored lost dup valid" "$rows" \
        "$(printf '200 200 200 0 0 yes\n200 200 200 0 0 yes\n200 200 200 0 0 yes')"
    ;;
demo_refusing)
    # tools/demo against a stand-in for the locked taskserver that answers 500 to every
    # POST, after copying a given file to where the demo asked for tasks.json. Nothing is
    # acknowledged, so nothing is "lost", yet the promise is broken: exit 1, with reasons.
    #   empty    an intact empty file, the list served: 0 of 20 stored (the old verdict
    #            called this "every acknowledged task stored" and exited 0)
    #   damaged  a damaged file and a list that answers 500: stored and dup ids are
    #            counted in the file itself (they were "?")
    printf '[\n]\n' >"$TMP/empty.json"
    # Three readable records (id 1 twice) and one cut short.
    printf '%s\n' '[' '{"id":1,"cliente":"cliente1","seq":1},' \
        '{"id":1,"cliente":"cliente2","seq":1},' '{"id":2,"cliente":"cliente1","seq":2},' \
        '{"id":3,"cli' >"$TMP/damaged.json"
    for kind in empty damaged; do
        dir=$TMP/standin-$kind
        list_args=""
        [ "$kind" = damaged ] && list_args="--list-status 500"
        mkdir -p "$dir/src"
        {
            echo '#!/bin/sh'
            # shellcheck disable=SC2016 # expanded by the stand-in, not here
            printf 'while [ $# -gt 0 ]; do [ "$1" = --file ] && cp %q "$2"; shift; done\n' \
                "$TMP/$kind.json"
            printf 'exec %q --mode 500 %s --max-seconds 60\n' "$FAKE" "$list_args"
        } >"$dir/src/taskserver"
        chmod +x "$dir/src/taskserver"
        ln -s "$CLIENTEMULATOR" "$dir/src/clientemulator"
        DEMO_LOCKED_DIR=$dir DEMO_UNLOCKED_DIR=$dir \
            bg_run 60 "$TMP/demo.out" "$TMP/demo.err" "$SOURCE_ROOT/tools/demo" --rounds 1 \
            --tasks 10
        cat "$TMP/demo.out"
        expect "tools/demo exit code with a server that refuses every task ($kind file)" "$RC" 1
        if [ "$kind" = empty ]; then
            why='0 of 20 acknowledged; 0 of 20 in the file$'
            want="20 0 0 0 0 yes"
        else
            why='0 of 20 acknowledged; 3 of 20 in the file; 1 duplicate ids;'
            why="$why the file is not valid JSON\$"
            want="20 0 3 0 1 no"
        fi
        grep -q "verdict: NOT every task stored: 2 of 2 clients exited non-zero; $why" \
            "$TMP/demo.out" || fail "$kind: the verdict does not say what failed"
        row=$(locked_rows "$TMP/demo.out")
        expect "$kind: locked row: sent acked stored lost dup valid" "$row" "$want"
        grep -q '^summary: .* locked_failed_rounds=1/1 locked_client_failures=2 ' \
            "$TMP/demo.out" || fail "$kind: summary: $(grep '^summary:' "$TMP/demo.out")"
        grep -q 'LOCKED build did not store every task' "$TMP/demo.err" ||
            fail "$kind: no error on stderr: $(cat "$TMP/demo.err")"
        # The port poll may run before the background server's stderr file exists: silently.
        ! grep -E "sed:|can't read|No such file" "$TMP/demo.err" ||
            fail "$kind: the demo's port poll complained on stderr (above)"
    done
    ;;
demo_interrupt)
    # Ctrl-C in the middle of a round, with a stand-in server whose process group ignores
    # SIGTERM (like a server stuck in its --grace): the demo must say it is stopping, kill
    # what is left after about 2 s, and end; no process of the stand-in may remain.
    mkdir -p "$TMP/stubborn/src"
    {
        echo '#!/bin/sh'
        printf 'echo $$ >%q\n' "$TMP/stubborn.pid"
        echo "trap '' TERM"
        printf '%q --mode hang --max-seconds 60 &\n' "$FAKE"
        # shellcheck disable=SC2016 # the stand-in's own variables
        echo 'i=0; while [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done'
    } >"$TMP/stubborn/src/taskserver"
    chmod +x "$TMP/stubborn/src/taskserver"
    ln -s "$CLIENTEMULATOR" "$TMP/stubborn/src/clientemulator"
    # Job control: the demo gets its own process group, as in a terminal, so that SIGINT to
    # that group is the Ctrl-C a teacher would press.
    set -m
    DEMO_LOCKED_DIR=$TMP/stubborn DEMO_UNLOCKED_DIR=$TMP/stubborn \
        "$SOURCE_ROOT/tools/demo" --rounds 1 --tasks 10 >"$TMP/demo.out" 2>"$TMP/demo.err" &
    demo=$!
    set +m
    for i in $(seq 1 200); do grep -q '^round 1, locked' "$TMP/demo.out" && break; sleep 0.1; done
    grep -q '^round 1, locked' "$TMP/demo.out" || fail "the demo did not start its first round"
    # Ctrl-C once the round is under way: its clients are running (not after a guessed sleep).
    for i in $(seq 1 100); do pgrep -x -P "$demo" clientemulator >/dev/null && break; sleep 0.1; done
    pgrep -x -P "$demo" clientemulator >/dev/null ||
        fail "the demo started no client within 10 s of its first round"
    stubborn=$(cat "$TMP/stubborn.pid" 2>/dev/null)
    [ -n "$stubborn" ] || fail "the stand-in server wrote no pid: nothing to check after Ctrl-C"
    start=$(date +%s%N)
    kill -INT -- "-$demo"
    for i in $(seq 1 150); do kill -0 "$demo" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$demo" 2>/dev/null; then
        kill -KILL -- "-$demo" "-$stubborn" 2>/dev/null
        wait "$demo"
        fail "tools/demo still running 15 s after Ctrl-C"
    fi
    wait "$demo"
    RC=$?
    elapsed_ms=$((($(date +%s%N) - start) / 1000000))
    expect "tools/demo exit code after Ctrl-C" "$RC" 130
    grep -q 'interrupted: stopping the server and the clients' "$TMP/demo.err" ||
        fail "no 'stopping' line on Ctrl-C: $(cat "$TMP/demo.err")"
    grep -q 'did not stop within 2 s: SIGKILL' "$TMP/demo.err" ||
        fail "no SIGKILL after 2 s: $(cat "$TMP/demo.err")"
    # Live members of the stand-in's group (its killed children may linger as zombies
    # until init reaps them: those do not count).
    alive=$(ps -eo pgid=,stat= | awk -v g="$stubborn" '$1 == g && $2 !~ /^Z/' | wc -l)
    if [ "$alive" -ne 0 ]; then
        kill -KILL -- "-$stubborn" 2>/dev/null
        fail "$alive processes of the stand-in server survived the demo"
    fi
    echo "demo_interrupt: stopped $elapsed_ms ms after Ctrl-C" >&2
    ;;
taskctl_concurrent)
    # taskctl add on the file while the locked server writes it under clientemulator load:
    # same store code, same locks, nothing lost. The adds start first and go on until both
    # clients are done (at least 200 of them), so they interleave with the server's appends.
    [ "$LOCKING" = 1 ] || {
        echo "skip: the unlocked build loses tasks by design (load_8x500 and race show it)" >&2
        exit 77
    }
    # A race window of 1 ms keeps each append's locked section long enough for the clients'
    # 1000 tasks to take a second or more: plenty of time for taskctl to cut in. Two
    # requests in flight per client: the server commits the POSTs of one event-loop turn
    # together, and large batches would leave taskctl few gaps to land in (7 of 200 adds
    # landed among the clients' tasks with 20 in flight, about 58 with 2).
    start_server --race-window-us 1000
    (
        k=0
        while [ "$k" -lt 2000 ] && [ "$SECONDS" -lt 120 ]; do
            [ "$k" -ge 200 ] && [ -e "$TMP/clients.done" ] && break
            k=$((k + 1))
            timeout 20 "$TASKCTL" -f "$FILE" add --cliente ctl --seq "$k" "ctl-$k" \
                >>"$TMP/adds.out" 2>>"$TMP/adds.err" || { echo "add $k failed" >>"$TMP/adds.err"; }
        done
        echo "$k" >"$TMP/adds.count"
    ) &
    adder=$!
    PIDS+=("$adder")
    for i in $(seq 1 100); do [ -s "$TMP/adds.out" ] && break; sleep 0.1; done
    [ -s "$TMP/adds.out" ] || fail "no taskctl add done within 10 s: $(head -n 5 "$TMP/adds.err")"
    run_clients tc 2 500 2
    touch "$TMP/clients.done"
    wait "$adder"
    stop_server
    adds=$(cat "$TMP/adds.count" 2>/dev/null)
    [ -n "$adds" ] && [ "$adds" -ge 200 ] || fail "taskctl adds: $adds, expected at least 200"
    ! grep -q 'failed' "$TMP/adds.err" || fail "a taskctl add failed: $(head -n 5 "$TMP/adds.err")"
    expect "taskctl adds reported" "$(grep -c '^added task ' "$TMP/adds.out")" "$adds"
    expect "exit codes of the 2 clients" "$codes" " 0 0"
    for i in 1 2; do
        expect "client $i acknowledged" "$(json "$TMP/c$i.out" 'j["acknowledged"]')" 500
    done
    total=$((1000 + adds))
    "$TASKCTL" -f "$FILE" verify --expect "$total" >"$TMP/verify.out" 2>"$TMP/verify.err"
    expect "taskctl verify --expect $total exit code" "$?" 0
    # The adds really ran among the server's appends: some ctl record has client records
    # stored both before and after it.
    inter=$(python3 - "$FILE" <<'PY'
import json, sys
who = [r.get("cliente") for r in json.load(open(sys.argv[1]))]
tc = [i for i, c in enumerate(who) if c in ("tc1", "tc2")]
print(sum(1 for i, c in enumerate(who) if c == "ctl" and tc and tc[0] < i < tc[-1]))
PY
)
    [ -n "$inter" ] && [ "$inter" -ge 10 ] ||
        fail "fewer than 10 taskctl adds landed between the server's appends (got '$inter')"
    echo "taskctl_concurrent: $adds adds, $inter of them among the clients' 1000 tasks" >&2
    ;;
spread)
    # Three servers on one file behind one name, as Docker's dnsrr gives them: 127.0.0.1,
    # .2 and .3 on one port, and a name that resolves to them and to 127.0.0.4, where nothing
    # listens, through an /etc/hosts of the test's own, bind-mounted in a mount namespace of
    # clientemulator's own (unshare; skipped where the kernel refuses it).
    hosts="$TMP/hosts"
    printf '127.0.0.2 replicas\n127.0.0.1 replicas\n127.0.0.4 replicas\n127.0.0.3 replicas\n' \
        >"$hosts"
    ns=(unshare -m)
    [ "$(id -u)" = 0 ] || ns=(unshare -r -m)
    # shellcheck disable=SC2016 # for the inner shell
    if ! "${ns[@]}" sh -c 'mount --bind "$1" /etc/hosts && getent ahostsv4 replicas' sh "$hosts" \
        >"$TMP/getent.out" 2>&1; then
        echo "skip: no private /etc/hosts (unshare -m and mount --bind refused):" \
            "$(head -c 200 "$TMP/getent.out")" >&2
        exit 77
    fi
    # ns_ce NAME ARGS...: clientemulator where "replicas" has the four addresses.
    ns_ce() {
        local name=$1
        shift
        # shellcheck disable=SC2016
        "${ns[@]}" sh -c 'mount --bind "$1" /etc/hosts && shift && exec "$@"' sh "$hosts" \
            "$CLIENTEMULATOR" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
        RC=$?
    }
    start_server --workers 2
    s1=$SERVER_PID port=$LISTEN_PORT
    servers=("$s1")
    for a in 127.0.0.2 127.0.0.3; do
        "$TASKSERVER" --port "$port" --bind "$a" --workers 2 --file "$FILE" --quiet \
            2>"$TMP/server-$a.err" &
        servers+=($!)
        PIDS+=($!)
        for _ in $(seq 1 100); do
            grep -q "listening on $a:$port" "$TMP/server-$a.err" && break
            sleep 0.1
        done
        grep -q "listening on $a:$port" "$TMP/server-$a.err" ||
            fail "no server listening on $a:$port after 10 s"
    done
    # Each server's workers: the pids its records carry.
    pids_of() { pgrep -P "$1" | paste -sd, -; }

    # One request at a time, so that the unlocked build keeps every task too: a client whose
    # first free connection takes every task would send them all to one address.
    ns_ce sp --url "http://replicas:$port" --id sp --tasks 300 --concurrency 1 --servers 3 \
        --verify --wait 10 --json
    expect "exit code, 300 tasks to 3 servers behind one name" "$RC" 0
    expect "addresses used, each with its share" \
        "$(json "$TMP/sp.out" 'sorted((a["address"], a["sent"], a["acked"]) for a in j["spread"])')" \
        "[('127.0.0.1', 100, 100), ('127.0.0.2', 100, 100), ('127.0.0.3', 100, 100)]"
    # In the file: each server stored its 100 (by the pids of its workers).
    shares=$(python3 - "$FILE" "$(pids_of "${servers[0]}")" "$(pids_of "${servers[1]}")" \
        "$(pids_of "${servers[2]}")" <<'PY'
import json, sys
recs = [r for r in json.load(open(sys.argv[1])) if r.get("cliente") == "sp"]
print(" ".join(str(sum(1 for r in recs if str(r["pid"]) in a.split(","))) for a in sys.argv[2:]))
PY
)
    expect "records stored by each server, by its workers' pids" "$shares" "100 100 100"
    # shellcheck disable=SC2016
    grep -q 'spread over 3 addresses of replicas' <(
        "${ns[@]}" sh -c 'mount --bind "$1" /etc/hosts && shift && exec "$@"' sh "$hosts" \
            "$CLIENTEMULATOR" --url "http://replicas:$port" --id sp2 --tasks 6 --concurrency 3 \
            --wait 10 2>&1
    ) || fail "the text summary does not say how the tasks were spread"

    # Waiting for more servers than answer: bounded by --wait, names the silent address.
    ns_ce four --url "http://replicas:$port" --id four --tasks 3 --servers 4 --wait 1
    expect "exit code, --servers 4 with 3 answering" "$RC" 3
    grep -q '127.0.0.4' "$TMP/four.err" || fail "--servers 4: 127.0.0.4 is not named: $(cat "$TMP/four.err")"
    expect "tasks sent while waiting for a 4th server" "$(grep -c '"cliente":"four"' "$FILE")" 0
    ns_ce h --url "http://replicas:$port" --health --servers 3
    expect "exit code, --health --servers 3" "$RC" 0
    expect "replicas listed by --health --servers 3" "$(grep -c ': 200 {' "$TMP/h.out")" 3
    # An address is not a name of several servers.
    ce ip --url "http://127.0.0.1:$port" --tasks 1 --servers 2 --wait 1
    expect "exit code, --servers 2 with an address" "$RC" 2
    # A name with one address: libcurl's own way, nothing pinned.
    ce one --url "http://127.0.0.1:$port" --id one --tasks 3 --wait 5 --json
    expect "exit code, one address" "$RC" 0
    expect "spread with one address" "$(json "$TMP/one.out" 'j["spread"]')" None
    for p in "${servers[@]:1}"; do kill -TERM "$p"; done
    stop_server
    "$TASKCTL" -f "$FILE" verify --expect 309 >"$TMP/verify.out" 2>&1 ||
        fail "taskctl verify --expect 309 (300 + 6 + 3): $(tail -n 5 "$TMP/verify.out")"
    ;;
*)
    echo "e2e_client.sh: unknown case $CASE" >&2
    exit 2
    ;;
esac
exit 0
