#!/usr/bin/env bash
# tests/e2e_classroom.sh - what the classroom's clients and verifier add, on 127.0.0.1 without Docker.
#
#   e2e_classroom.sh CASE FAKE_HTTP_SERVER
#
# Cases:
#   barrier      two clientemulators with --barrier --clients 2 --interval-ms 1: both start
#                at one instant (their first requests within 20 ms), each reports its overlap
#                and its verdict names the server's locking, each writes its result file; in
#                3 rounds of 3 the file shows >= 20 switches between them (taskctl verify
#                --cliente), and every round passes.
#   barrier_timeout  one client alone at a barrier for two: exit 4 within the timeout, the
#                message names the folder and the count; nothing was sent.
#   second_run   the same --id twice on one list: the second run reports its own 100 tasks
#                stored, the first run's 100 as an earlier run, nothing doubled, exit 0.
#   verify_glob  taskctl verify --cliente PATTERN judges only the matching tasks (count, seq)
#                and still reports damage anywhere in the file.
#   explain      a server that answers 500: the summary explains "acknowledged < sent".
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
CASE=${1:-}
FAKE=${2:-}
CE=$CLIENTEMULATOR

field() { # field KEY FILE
    sed -n "s/^$1=//p" "$2" | head -n 1
}

case "$CASE" in
barrier)
    [ "$LOCKING" = 1 ] || skip "the interleaving check needs the locked build (the unlocked one loses tasks)"
    start_server "$E2E_DIR/tasks.json" || e2e_finish
    url="http://127.0.0.1:$PORT"
    for round in 1 2 3; do
        dir="$E2E_DIR/run$round"
        pids=()
        for c in client1 client2; do
            "$CE" --url "$url" --id "$c@run$round" --tasks 100 --interval-ms 1 --verify \
                --barrier "$dir" --clients 2 --barrier-timeout 30 --wait 10 \
                >"$E2E_DIR/$c.$round.out" 2>&1 &
            pids+=($!)
            track_pid "$!"
        done
        rcs=""
        for p in "${pids[@]}"; do
            wait_exit "$p" 60 || fail "round $round: a client did not finish within 60 s"
            rcs="$rcs$WAIT_STATUS "
        done
        check_eq "round $round: both clients exit 0" "0 0 " "$rcs"
        s1=$(field start_ns "$dir/done/client1@run$round")
        s2=$(field start_ns "$dir/done/client2@run$round")
        if [ -n "$s1" ] && [ -n "$s2" ]; then
            d=$(((s1 > s2 ? s1 - s2 : s2 - s1) / 1000000))
            if [ "$d" -lt 20 ]; then
                pass "round $round: the clients started $d ms apart (< 20)"
            else
                fail "round $round: the clients started $d ms apart"
            fi
        else
            fail "round $round: missing done files in $dir/done"
        fi
        for c in client1 client2; do
            out="$E2E_DIR/$c.$round.out"
            check_match "round $round: $c reports its overlap" \
                '^overlap: another client was sending during [0-9.]+ ms' "$(cat "$out")"
            check_match "round $round: $c's verdict names the server's locking" \
                '^verdict: OK, every acknowledged task is stored exactly once \(server locking=true\)$' \
                "$(cat "$out")"
            check_eq "round $round: $c's result file" "0 100 100" \
                "$(field exit "$dir/result/$c@run$round") $(field acked "$dir/result/$c@run$round") $(field stored "$dir/result/$c@run$round")"
        done
        v=$("$TASKCTL" -f "$E2E_DIR/tasks.json" verify --cliente "*@run$round" --expect 200)
        check_match "round $round: taskctl verify --cliente passes" '^verdict: OK: 200 tasks$' "$v"
        sw=$(sed -n 's/^interleaving: \([0-9]*\) switches.*/\1/p' <<<"$v")
        if [ -n "$sw" ] && [ "$sw" -ge 20 ]; then
            pass "round $round: $sw switches between the clients in file order (>= 20)"
        else
            fail "round $round: expected >= 20 switches, got '$sw'"
        fi
    done
    stop_server
    ;;
barrier_timeout)
    start_server "$E2E_DIR/tasks.json" || e2e_finish
    t0=$(now_ms)
    "$CE" --url "http://127.0.0.1:$PORT" --id lonely --tasks 10 --barrier "$E2E_DIR/b" \
        --clients 2 --barrier-timeout 1 >"$E2E_DIR/out" 2>"$E2E_DIR/err"
    rc=$?
    el=$(($(now_ms) - t0))
    check_eq "exit status of a client left alone at the barrier" 4 "$rc"
    check_match "the message names the folder and the count" \
        "barrier $E2E_DIR/b/ready: only 1 of 2 clients arrived within 1.0 s" "$(cat "$E2E_DIR/err")"
    [ "$el" -lt 10000 ] && pass "gave up after $el ms" || fail "gave up only after $el ms"
    check_eq "its result file says exit 4" 4 "$(field exit "$E2E_DIR/b/result/lonely")"
    check_eq "nothing was sent" 0 "$(curl -s "http://127.0.0.1:$PORT/tareas" | grep -c '^{')"
    stop_server
    ;;
second_run)
    start_server "$E2E_DIR/tasks.json" || e2e_finish
    url="http://127.0.0.1:$PORT"
    # One request at a time: the unlocked build loses nothing then, and this case is about
    # runs, not races.
    "$CE" --url "$url" --id ana --tasks 100 --concurrency 1 --verify >"$E2E_DIR/first" 2>&1
    check_eq "first run: exit status" 0 "$?"
    "$CE" --url "$url" --id ana --tasks 100 --concurrency 1 --verify --json \
        >"$E2E_DIR/second.json" 2>"$E2E_DIR/second.err"
    check_eq "second run with the same --id: exit status" 0 "$?"
    got=$(python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))["verify"]
print(v["stored"], v["doubled"], v["missing"], v["earlier_runs"], v["first_id"])' "$E2E_DIR/second.json" 2>&1)
    check_eq "second run: stored doubled missing earlier first_id" "100 0 0 100 101" "$got"
    "$CE" --url "$url" --id ana --tasks 100 --concurrency 1 --verify >"$E2E_DIR/third" 2>&1
    check_match "third run, text: the earlier runs are named, not counted" \
        'earlier runs: 200 more records of "ana" below id 201' "$(cat "$E2E_DIR/third")"
    check_match "third run, text: verdict OK" '^verdict: OK' "$(cat "$E2E_DIR/third")"
    stop_server
    ;;
verify_glob)
    f="$E2E_DIR/tasks.json"
    {
        echo '['
        for i in 1 2 3; do echo "{\"id\":$i,\"titulo\":\"a\",\"cliente\":\"c1@run1\",\"seq\":$i},"; done
        echo '{"id":4,"titulo":"a","cliente":"c1@run2","seq":1},'
        echo '{"id":5,"titulo":"a","cliente":"c2@run2","seq":1},'
        echo '{"id":6,"titulo":"a","cliente":"c1@run2","seq":2},'
        echo '{"id":7,"titulo":"a","cliente":"c2@run2","seq":2}'
        echo ']'
    } >"$f"
    out=$("$TASKCTL" -f "$f" verify --cliente '*@run2' --expect 4)
    check_eq "verify --cliente '*@run2' --expect 4: exit status" 0 "$?"
    check_match "selected line" '^selected: 4 of 7 records, those whose cliente matches "\*@run2"$' "$out"
    check_match "switches among the selected" '^interleaving: 3 switches between clientes' "$out"
    "$TASKCTL" -f "$f" verify --cliente '*@run2' --expect 7 >/dev/null
    check_eq "--expect counts only the selected: 7 fails" 1 "$?"
    "$TASKCTL" -f "$f" verify --cliente '*@run1' --expect 3 >/dev/null
    check_eq "run 1 alone passes" 0 "$?"
    # Damage outside the selected clientes still fails the file.
    sed -i 's/^{"id":2,.*$/{"id":2,"titulo":"a","cli/' "$f"
    out=$("$TASKCTL" -f "$f" verify --cliente '*@run2' --expect 4)
    check_eq "damage elsewhere: exit status" 1 "$?"
    check_match "damage elsewhere is reported" '^damage: byte [0-9]+, line 3' "$out"
    check_match "and the counting method is said" \
        '^json: not a valid JSON array of objects either \(byte [0-9]+: .*\); the counts here are of the records readable line by line' \
        "$out"
    ;;
explain)
    [ -x "$FAKE" ] || skip "no fake_http_server"
    "$FAKE" --mode 500 --max-seconds 60 2>"$E2E_DIR/fake.err" &
    fpid=$!
    track_pid "$fpid"
    port=""
    for _ in $(seq 1 100); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$E2E_DIR/fake.err" | head -n 1)
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { fail "fake server did not start"; e2e_finish; }
    "$CE" --url "http://127.0.0.1:$port" --id x --tasks 5 --wait 5 >"$E2E_DIR/out" 2>&1
    check_eq "exit status against a server that answers 500" 1 "$?"
    check_match "acknowledged < sent is explained" \
        '^acknowledged < sent: 5 requests got no 201, so the server promised nothing for them:$' \
        "$(cat "$E2E_DIR/out")"
    check_match "the 500s are explained" '^  http 500: 5, the server could not store the task' \
        "$(cat "$E2E_DIR/out")"
    kill -TERM "$fpid" 2>/dev/null
    ;;
*)
    echo "e2e_classroom.sh: unknown case '$CASE'" >&2
    exit 2
    ;;
esac
e2e_finish
