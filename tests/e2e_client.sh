#!/usr/bin/env bash
# e2e_client.sh - clientemulator and tools/demo against real and fake servers on 127.0.0.1.
#
#   e2e_client.sh CASE FAKE_HTTP_SERVER
#
# Environment (from meson's test_env): TASKSERVER TASKCTL CLIENTEMULATOR LOCKING SOURCE_ROOT
# BUILD_ROOT. Exit 0 pass, 1 fail, 77 skip (with the reason on stderr).
set -u
CASE=${1:?case}
FAKE=${2:?fake_http_server path}
: "${TASKSERVER:?}" "${TASKCTL:?}" "${CLIENTEMULATOR:?}" "${LOCKING:?}" "${SOURCE_ROOT:?}"

TMP=$(mktemp -d /tmp/e2e_client.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
    echo "FAIL [$CASE]: $*" >&2
    for f in "$TMP"/*.err "$TMP"/*.out; do
        [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
    done
    exit 1
}

# json FILE EXPR: prints EXPR evaluated on the JSON object in FILE (bound to j).
json() {
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" ||
        fail "$1 is not the JSON expected: $(head -c 300 "$1")"
}

# expect WHAT GOT WANT
expect() { [ "$2" = "$3" ] || fail "$1: expected $3, got $2"; }

# wait_listening ERRFILE: prints the port from "listening on 127.0.0.1:PORT" (10 s at most).
wait_listening() {
    local i port
    for i in $(seq 1 100); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$1" | head -n 1)
        [ -n "$port" ] && { echo "$port"; return 0; }
        sleep 0.1
    done
    fail "no 'listening on' line in $1 after 10 s"
}

# start_fake MODE [ARGS...]: sets URL.
start_fake() {
    "$FAKE" --mode "$@" --max-seconds 120 2>"$TMP/fake.err" &
    PIDS+=($!)
    URL="http://127.0.0.1:$(wait_listening "$TMP/fake.err")"
}

# start_server [ARGS...]: taskserver with 4 workers on a fresh file; sets URL, FILE, SERVER_PID.
start_server() {
    FILE="$TMP/tasks.json"
    "$TASKSERVER" --port 0 --bind 127.0.0.1 --workers 4 --file "$FILE" --quiet "$@" \
        2>"$TMP/server.err" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    URL="http://127.0.0.1:$(wait_listening "$TMP/server.err")"
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

# ce NAME ARGS...: runs clientemulator, stdout to NAME.out, stderr to NAME.err; sets RC.
ce() {
    local name=$1
    shift
    "$CLIENTEMULATOR" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    RC=$?
}

# fake_case MODE TASKS REFUSED RESET HTTP500: a misbehaving server, counted by kind, exit 1.
fake_case() {
    start_fake "$1"
    ce c --url "$URL" --id fk --tasks "$2" --concurrency 4 --wait 5 --timeout 10 --json
    expect "exit code against a '$1' server" "$RC" 1
    expect "sent" "$(json "$TMP/c.out" 'j["sent"]')" "$2"
    expect "acknowledged" "$(json "$TMP/c.out" 'j["acknowledged"]')" 0
    expect "failed" "$(json "$TMP/c.out" 'j["failed"]')" "$2"
    expect "refused" "$(json "$TMP/c.out" 'j["errors"]["refused"]')" "$3"
    expect "reset" "$(json "$TMP/c.out" 'j["errors"]["reset"]')" "$4"
    expect "http 500" "$(json "$TMP/c.out" 'j["errors"]["http"].get("500",0)')" "$5"
    expect "timeout" "$(json "$TMP/c.out" 'j["errors"]["timeout"]')" 0
    expect "other" "$(json "$TMP/c.out" 'j["errors"]["other"]')" 0
    grep -q "failed.*$URL/tareas\|$URL/tareas.*failed" "$TMP/c.err" ||
        fail "stderr does not name the failing URL $URL/tareas"
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
fake_500) fake_case 500 20 0 0 20 ;;
fake_close) fake_case close 20 0 20 0 ;;
fake_partial) fake_case partial 20 0 20 0 ;;
fake_mixed) fake_case mixed 20 0 10 10 ;;
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
    # A clean list of the same client passes.
    printf '[\n{"id":1,"cliente":"w","seq":1,"titulo":"w-1"},\n{"id":2,"cliente":"w","seq":2,"titulo":"w-2"}\n]\n' \
        >"$TMP/ok.json"
    kill -TERM "${PIDS[-1]}"
    start_fake ok --list "$TMP/ok.json"
    ce c --url "$URL" --id w --tasks 2 --verify --json
    expect "exit code of --verify on a clean list" "$RC" 0
    ;;
load_8x500)
    # LOCKING=1: all exit 0 and the file verifies with 4000 tasks. LOCKING=0: a race
    # window makes the unlocked store lose tasks, and the checks must see it.
    if [ "$LOCKING" = 1 ]; then start_server; else start_server --race-window-us 1000; fi
    pids=()
    for i in 1 2 3 4 5 6 7 8; do
        "$CLIENTEMULATOR" --url "$URL" --id "load$i" --tasks 500 --concurrency 50 --wait 10 \
            --timeout 60 --json >"$TMP/c$i.out" 2>"$TMP/c$i.err" &
        pids+=($!)
    done
    codes=""
    for p in "${pids[@]}"; do
        wait "$p"
        codes="$codes $?"
    done
    acked=0
    for i in 1 2 3 4 5 6 7 8; do
        acked=$((acked + $(json "$TMP/c$i.out" 'j["acknowledged"]')))
    done
    lost=0
    for i in 1 2 3 4 5 6 7 8; do
        ce v$i --url "$URL" --id "load$i" --tasks 500 --verify-only --json
        lost=$((lost + $(json "$TMP/v$i.out" 'j["verify"]["missing"]')))
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
        [ "$lost" -gt 0 ] || fail "unlocked build with a race window: no loss detected"
        expect "taskctl verify --expect 4000 exit code (unlocked)" "$vrc" 1
        echo "unlocked: $acked acknowledged, $lost lost" >&2
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
    done
    detected=0
    for i in 1 2 3 4; do
        wait "${pids[$((i - 1))]}"
        rc=$?
        missing=$(json "$TMP/c$i.out" 'j["verify"]["missing"]')
        if [ "$LOCKING" = 1 ]; then
            expect "client $i exit code (locked, race window)" "$rc" 0
            expect "client $i acknowledged (locked)" "$(json "$TMP/c$i.out" 'j["acknowledged"]')" 200
            expect "client $i missing (locked)" "$missing" 0
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
        timeout 500 "$SOURCE_ROOT/tools/demo" --rounds 3 >"$TMP/demo.out" 2>"$TMP/demo.err"
    RC=$?
    cat "$TMP/demo.out"
    expect "tools/demo exit code" "$RC" 0
    summary=$(grep '^summary:' "$TMP/demo.out") || fail "no summary line in the demo's output"
    echo "$summary" | grep -q ' locked_lost=0 ' || fail "locked build lost tasks: $summary"
    ul=$(echo "$summary" | sed -n 's/.* unlocked_lost=\([0-9]*\) .*/\1/p')
    [ -n "$ul" ] && [ "$ul" -gt 0 ] || fail "unlocked build lost nothing in 3 rounds: $summary"
    n=$(grep -c '^| locked ' "$TMP/demo.out")
    expect "locked rows in the table" "$n" 3
    n=$(grep -c '^| locked .*| 0 *| 0 *| yes' "$TMP/demo.out")
    expect "locked rows with 0 lost, 0 duplicate ids, valid JSON" "$n" 3
    ;;
*)
    echo "e2e_client.sh: unknown case $CASE" >&2
    exit 2
    ;;
esac
exit 0
