#!/usr/bin/env bash
# e2e_fsync.sh - --fsync, counted and ordered: the server runs under tests/shim_fsync.c
# (LD_PRELOAD), which logs every sync, file write and response write in order, and can make
# a sync fail. tests/check_fsync_log.py judges the log.
#
#     e2e_fsync.sh CASE
#
#   order        every 201 is sent after an fdatasync of tasks.json called after the pwrite
#                of that record (the worker's own, or another's that covered it: group
#                commit) and done before the answer
#   eio          the sync of the third POST fails with EIO: that POST gets 500, the two
#                acknowledged tasks are in the file
#   dir_create   the directory is fsync'ed after tasks.json is created, before the first 201
#   dir_copies   the directory is fsync'ed after the .orig copy (start-up canonicalization)
#                and the .torn copy (a torn tail cut by an append) are written, before
#                tasks.json is written again
#   eio_refused  after a failed sync, further appends are refused and /health says so,
#                until a restart (a failed fdatasync is final: task_store_sync.c)
#   eio_meanwhile  the failing sync takes 1.5 s (the shim sleeps): POSTs sent meanwhile get
#                500, with 4 workers (others whose own syncs succeed after it failed) and
#                with 1 (the POSTs wait and are answered in batches) (found by tools/mutate)
#   torn_grew    taskctl repair cutting a torn tail while another program appends a line
#                (the shim writes it when the cut bytes' copy is synced): the cut is given
#                up, the line stays, no copy is left (found by tools/mutate)
#   repair_eio   taskctl repair of a file in another layout whose rewrite's fdatasync fails:
#                the original bytes are put back exactly (size included) and the copy
#                saved beside it is removed (found by tools/mutate)
#
# Environment (set by meson test): TASKSERVER, TASKCTL, SHIM_FSYNC (the shim's path),
# LOCKING. Exit 0 pass, 1 fail, 77 skip.

. "$(dirname "$0")/lib.sh"

CASE=${1:-}
e2e_init
[ -n "${SHIM_FSYNC:-}" ] && [ -f "$SHIM_FSYNC" ] || skip "SHIM_FSYNC is not set (run through meson test)"
CHECK="python3 $(dirname "$0")/check_fsync_log.py"

# shimmed LOG [VAR=VALUE...]: a wrapper in $E2E_DIR that runs taskserver under the shim,
# logging to LOG (exec: the server keeps the wrapper's pid); its path in SHIMMED. In a
# sanitizer build the sanitizer runtime must come first in LD_PRELOAD.
shimmed() {
    local log=$1 pre="$SHIM_FSYNC" asan
    shift
    asan=$(ldd "$TASKSERVER" 2>/dev/null | awk '/libasan\.so/ {print $3; exit}')
    [ -n "$asan" ] && pre="$asan $pre"
    E2E_NSHIM=$((${E2E_NSHIM:-0} + 1))
    SHIMMED="$E2E_DIR/shimmed.$E2E_NSHIM.sh"
    {
        echo '#!/bin/sh'
        printf 'exec env LD_PRELOAD=%q SHIM_FSYNC_LOG=%q' "$pre" "$log"
        local v
        for v in "$@"; do printf ' %q' "$v"; done
        printf ' %q "$@"\n' "$TASKSERVER"
    } >"$SHIMMED"
    chmod +x "$SHIMMED"
}

# post BASE CLIENTE SEQ: prints the status of one POST.
post() {
    http_status -H 'Content-Type: application/json' \
        --data-binary "{\"titulo\":\"sync $2 $3\",\"cliente\":\"$2\",\"seq\":$3}" "$1/tareas"
}

# judge DESC CHECK-ARGS...: runs check_fsync_log.py; a check.
judge() {
    local desc=$1 out
    shift
    if out=$($CHECK "$@" 2>&1); then
        pass "$desc: $out"
    else
        fail "$desc: $(printf '%s' "$out" | head -20)"
    fi
}

case_order() {
    local d="$E2E_DIR/order" f base i j code bad=0 par=8 pids
    mkdir -p "$d"
    f="$d/tasks.json"
    shimmed "$d/shim.log"
    TASKSERVER=$SHIMMED start_server "$f" --workers 4 --fsync --quiet || return
    base="http://127.0.0.1:$PORT"
    # 10 one after the other, then 5 rounds of 8 at once: the workers append side by side
    # and one sync may cover another worker's record (group commit). One at a time in the
    # unlocked build, whose concurrent appends race on purpose.
    [ "$LOCKING" = 1 ] || par=1
    for i in $(seq 1 10); do
        code=$(post "$base" seq "$i")
        [ "$code" = 201 ] || bad=$((bad + 1))
    done
    for i in $(seq 1 5); do
        pids=()
        for j in $(seq 1 8); do
            { post "$base" "par$j" "$i"; echo; } >"$d/p$j.$i" &
            pids+=($!)
            [ "${#pids[@]}" -lt "$par" ] && continue
            wait "${pids[@]}"
            pids=()
        done
    done
    check_eq "50 POSTs with --fsync under the shim: all 201" "0 40" \
        "$bad $(cat "$d"/p*.* | grep -c '^201$')"
    stop_server TERM 15
    check_eq "SIGTERM exit status" 0 "$SERVER_STATUS"
    check_eq "the shim logged (it was loaded)" yes \
        "$([ -s "$d/shim.log" ] && echo yes || echo no)"
    judge "every 201 after an fdatasync of its own record" order "$d/shim.log" "$f" 50
    check_taskctl_verify_count "$f" 50
}

# check_taskctl_verify_count FILE N: taskctl verify --expect N.
check_taskctl_verify_count() {
    check_cmd "taskctl verify --expect $2" "$TASKCTL" -f "$1" verify --expect "$2"
}

# eio_server DIR: a server (1 worker, --fsync) under the shim; two POSTs stored, then the
# sync of the third fails with EIO. Sets BASE; the third POST's status in EIO_STATUS.
eio_server() {
    local d=$1 i code
    shimmed "$d/shim.log" SHIM_FSYNC_FAIL_NEXT="$d/fail-next-sync"
    TASKSERVER=$SHIMMED start_server "$d/tasks.json" --workers 1 --fsync --quiet || return 1
    BASE="http://127.0.0.1:$PORT"
    for i in 1 2; do
        code=$(post "$BASE" eio "$i")
        check_eq "POST $i before the failing sync" 201 "$code"
    done
    : >"$d/fail-next-sync"
    EIO_STATUS=$(curl -s -o "$d/eio.body" -w '%{http_code}' --max-time 10 \
        -H 'Content-Type: application/json' \
        --data-binary '{"titulo":"sync eio 3","cliente":"eio","seq":3}' "$BASE/tareas")
}

case_eio() {
    local d="$E2E_DIR/eio" code
    mkdir -p "$d/acks"
    eio_server "$d" || return
    check_eq "POST whose fdatasync fails with EIO: status" 500 "$EIO_STATUS"
    judge "the failed sync: after the record's pwrite, before the 500" eio "$d/shim.log" \
        "$d/tasks.json"
    check_match "POST whose fdatasync fails: a JSON error saying so" \
        '^\{"error":"[^"]*could not be made durable' "$(cat "$d/eio.body")"
    check_match "the failed sync is logged, naming the file" "$d/tasks.json: fdatasync: " \
        "$(cat "$SERVER_LOG")"
    code=$(curl -s -o "$d/list.json" -w '%{http_code}' --max-time 10 "$BASE/tareas")
    check_eq "GET /tareas after the failed sync: status" 200 "$code"
    stop_server TERM 15
    check_eq "SIGTERM exit status" 0 "$SERVER_STATUS"
    # The two acknowledged tasks stored once; the third may be in the file or not (its
    # bytes were written, their durability unknown): it was never acknowledged.
    printf '1\n2\n' >"$d/acks/ack.eio"
    check_cmd "the 2 acknowledged tasks stored, each once" python3 \
        "$(dirname "$0")/check_store.py" "$d/tasks.json" "$d/acks"
}

case_eio_refused() {
    local d="$E2E_DIR/eio" code
    mkdir -p "$d"
    eio_server "$d" || return
    check_eq "POST whose fdatasync fails with EIO: status" 500 "$EIO_STATUS"
    code=$(post "$BASE" eio 4)
    check_eq "POST after a failed sync: refused until a restart (not 201)" yes \
        "$([ "$code" != 201 ] && echo yes || echo "no ($code)")"
    code=$(curl -s -o "$d/health.json" -w '%{http_code}' --max-time 10 "$BASE/health")
    check_eq "GET /health after a failed sync: 503 with status failed" '503 "failed"' \
        "$code $(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])).get("status")))' "$d/health.json" 2>&1)"
    stop_server TERM 15
    check_eq "SIGTERM exit status" 0 "$SERVER_STATUS"
    start_server "$d/tasks.json" --workers 1 --fsync --quiet || return
    check_eq "POST after a restart: 201" 201 "$(post "http://127.0.0.1:$PORT" eio 4)"
    stop_server TERM 15
}

case_dir_create() {
    local d="$E2E_DIR/create" f
    mkdir -p "$d"
    f="$d/tasks.json"
    shimmed "$d/shim.log"
    TASKSERVER=$SHIMMED start_server "$f" --workers 1 --fsync --quiet || return
    check_eq "POST on a new file" 201 "$(post "http://127.0.0.1:$PORT" new 1)"
    stop_server TERM 15
    judge "tasks.json created: its directory synced before the first 201" dir-create \
        "$d/shim.log" "$f"
}

case_dir_copies() {
    local d="$E2E_DIR/copies" f
    mkdir -p "$d"
    f="$d/tasks.json"
    # Not the canonical layout (one line): start-up rewrites it, the original saved as .orig.
    printf '[{"id":1,"titulo":"una linea","cliente":"orig","seq":1}]\n' >"$f"
    shimmed "$d/shim.log"
    TASKSERVER=$SHIMMED start_server "$f" --workers 1 --fsync || return
    check_eq "the start-up saved an .orig copy" 1 "$(find "$d" -name 'tasks.json.orig-*' | wc -l)"
    # A torn tail (a writer killed mid-append): the next append saves it as .torn and cuts it.
    python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    data = f.read()
    assert data.endswith(b"\n]\n"), data[-20:]
    f.seek(len(data) - 3)
    f.write(b",\n{\"id\":2,\"titulo\":\"rota")
    f.truncate()' "$f" || fail "could not tear the tail of $f"
    check_eq "POST after a torn tail" 201 "$(post "http://127.0.0.1:$PORT" torn 1)"
    check_eq "the append saved a .torn copy" 1 "$(find "$d" -name 'tasks.json.torn-*' | wc -l)"
    stop_server TERM 15
    judge "the .orig and .torn copies: the directory synced before tasks.json is written" \
        dir-copies "$d/shim.log" "$f" orig torn
}

case_eio_meanwhile() {
    eio_meanwhile 4 # the others on other workers: their own syncs succeed, after the failure
    eio_meanwhile 1 # all on the one worker, answered in batches after it: the batch's error
}

# eio_meanwhile WORKERS
eio_meanwhile() {
    local d="$E2E_DIR/meanwhile$1" i code pids=() bad=0
    mkdir -p "$d"
    note "-- $1 workers"
    shimmed "$d/shim.log" SHIM_FSYNC_FAIL_NEXT="$d/fail" SHIM_FSYNC_FAIL_DELAY_MS=1500
    TASKSERVER=$SHIMMED start_server "$d/tasks.json" --workers "$1" --fsync --quiet || return
    BASE="http://127.0.0.1:$PORT"
    check_eq "POST before the failing sync" 201 "$(post "$BASE" mw 1)"
    : >"$d/fail"
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
        --data-binary '{"titulo":"sync mw 2","cliente":"mw","seq":2}' "$BASE/tareas" \
        >"$d/first.code" &
    pids+=($!)
    # The trigger is removed when the failing sync starts (and sleeps): then the others.
    wait_until 10 test ! -e "$d/fail" || fail "the failing sync did not start within 10 s"
    for i in 3 4 5 6; do
        post "$BASE" mw "$i" >"$d/code.$i" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do
        wait_exit "$i" 20 || fail "a POST did not end within 20 s"
    done
    check_eq "the POST whose sync fails: status" 500 "$(cat "$d/first.code")"
    for i in 3 4 5 6; do
        code=$(cat "$d/code.$i")
        [ "$code" = 500 ] || bad=$((bad + 1))
        note "POST $i sent during the failing sync: $code"
    done
    check_eq "POSTs sent while a sync was failing: each answered 500, none acknowledged" 0 "$bad"
    stop_server TERM 15
    check_eq "SIGTERM exit status" 0 "$SERVER_STATUS"
}

case_torn_grew() {
    local d="$E2E_DIR/grew" f pre asan out
    mkdir -p "$d"
    f="$d/tasks.json"
    printf '[\n{"id":1,"titulo":"a"},\n{"id":2,"tit' >"$f"
    pre=$SHIM_FSYNC
    asan=$(ldd "$TASKCTL" 2>/dev/null | awk '/libasan\.so/ {print $3; exit}')
    [ -n "$asan" ] && pre="$asan $pre"
    out=$(env LD_PRELOAD="$pre" SHIM_FSYNC_LOG="$d/shim.log" SHIM_FSYNC_GROW="$f" \
        "$TASKCTL" -f "$f" repair 2>&1)
    note "taskctl repair: $out"
    check_match "the other program's line was written during the cut" '"added"' "$(cat "$d/shim.log" "$f")"
    check_eq "its line is still in the file (the cut was given up)" yes \
        "$(tail -n 1 "$f" | grep -q '^{"added":"by another program"}$' && echo yes || echo "no: $(tail -c 80 "$f")")"
    check_eq "no copy of cut bytes left beside it" "" \
        "$(cd "$d" && find . -name 'tasks.json.torn-*' | tr '\n' ' ')"
}

case_repair_eio() {
    local d="$E2E_DIR/repair" f pre asan out rc
    mkdir -p "$d"
    f="$d/tasks.json"
    # Records without ids, as json.dump writes them: the canonical layout is longer, so the
    # rewrite grows the file before its fdatasync fails.
    printf '[{"titulo": "a"}, {"titulo": "b"}, {"titulo": "c"}]' >"$d/original"
    cp "$d/original" "$f"
    pre=$SHIM_FSYNC
    asan=$(ldd "$TASKCTL" 2>/dev/null | awk '/libasan\.so/ {print $3; exit}')
    [ -n "$asan" ] && pre="$asan $pre"
    touch "$d/fail"
    out=$(env LD_PRELOAD="$pre" SHIM_FSYNC_LOG="$d/shim.log" SHIM_FSYNC_FAIL_NEXT="$d/fail" \
        "$TASKCTL" -f "$f" repair 2>&1)
    rc=$?
    check_eq "the sync of the rewrite was made to fail" no "$([ -e "$d/fail" ] && echo yes || echo no)"
    check_eq "taskctl repair whose rewrite cannot be synced: exit status" 3 "$rc"
    check_match "... it says the original was put back" 'rewrite failed, original bytes put back' \
        "$out"
    check_cmd "the original bytes put back, size included" cmp "$d/original" "$f"
    check_eq "no copy of the original left beside it" "" \
        "$(cd "$d" && find . -name 'tasks.json.*' | tr '\n' ' ')"
}

case "$CASE" in
order | eio | eio_refused | eio_meanwhile | dir_create | dir_copies | repair_eio | torn_grew)
    note "== fsync: $CASE (LOCKING=$LOCKING)"
    "case_$CASE"
    ;;
*)
    echo "usage: $0 order|eio|eio_refused|eio_meanwhile|dir_create|dir_copies|repair_eio|torn_grew" >&2
    exit 2
    ;;
esac
e2e_finish
