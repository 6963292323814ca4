#!/usr/bin/env bash
# outside.sh - tasks.json changed from outside while the server runs (issue 11): adopted or refused loudly, never a lost 201.
#
#     outside.sh CASE
#
#   echo_reset        echo "[]" > tasks.json: the next POST gets id 1, /health 200
#   rename_editor     an editor's save (temp file + os.rename, indent=2) and sed -i: adopted
#   rm                rm tasks.json: POSTs go on into a new file
#   hand_line         a record appended by hand after "]": refused, file untouched, /health
#                     503 with the byte; fixed by hand (sed -i): stored again, no restart
#   pretty_in_place   json.dump(indent=2) into the file itself: adopted, original saved
#   cp_idle           cp backup.json tasks.json on an idle server: adopted
#   cp_under_load     the same during a POST load, several rounds: adopted or refused
#                     loudly, never a 201 on top of damage, no NUL bytes
#   no_file           a respawned worker that cannot open the file (chmod 000), then a
#                     directory at the path: 503 with the reason, the master exits 1
#   no_file_probes    a directory at the path while /health is probed like an orchestrator
#                     would: the master exits 1 after --grace
#   two_servers       two servers on one file, load through both, a rename in the middle
#   stale_save        under load, the list read, then saved by rename 300 ms later (an
#                     editor's stale buffer): every 201 is in the new file or in the copy
#                     the server kept of the replaced one, and the log says so
#   reset_under_load  taskctl reset during a load
#   outside_lock      another program holds an fcntl write lock: 503 after --lock-timeout
#   strict_json       seq 070, 1.0, 1e2, -0, 9007199254740990.9: 400; /tareas/01: 404
#   balance           6,000 idle connections against 2 workers with --max-connections 3100
#   fsync_dir         --fsync: a directory fsync follows every file the server creates
#
# Each case makes the change exactly as a person or a tool would (the shell's > and >>,
# mv, rm, cp, sed -i, Python's json.dump), then checks with tests/outside.py that the file
# at the path is valid JSON, that every task acknowledged with 201 after the change is in
# it exactly once, that ids are unique (1..n), and that /health tells the truth on every
# worker. A worker is addressed alone by stopping the others (SIGSTOP) for one request.
#
# Environment (set by meson test): TASKSERVER, TASKCTL, RAW_HTTP, FAULT_LOAD, LOCKING=1|0.
# With LOCKING=0 the loads come from one client (an unlocked build loses tasks under
# concurrent writers on purpose), and the cases that need a lock to share skip (77).
# E2E_KEEP=1 keeps the temp dir.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/faults_lib.sh"

CASE=${1:-}
OUTSIDE_PY="$(dirname "$0")/outside.py"
e2e_init
for v in RAW_HTTP FAULT_LOAD TASKCTL; do
    [ -n "${!v}" ] || skip "$v is not set (run through meson test)"
    [ -x "${!v}" ] || skip "$v=${!v} is not an executable"
done
trap ow_cleanup EXIT
if [ "$LOCKING" = 1 ]; then
    LOAD_CLIENTS=4
else
    LOAD_CLIENTS=1
fi

# ---------------------------------------------------------------- helpers

# The EXIT trap: after a failure, what matters goes to the log (the servers' messages,
# without the line per stored task, instead of lib.sh's plain tails); lib.sh removes the
# temp dir all the same and keeps the exit status (77 for a skip, 1 for a failure).
ow_cleanup() {
    local rc=$? l
    if [ "$(e2e_failures)" -gt 0 ] && [ -n "$E2E_DIR" ]; then
        for l in "$E2E_DIR"/server.*.log; do
            [ -f "$l" ] || continue
            echo "# $(basename "$l"), without the stored-task lines (last 40):" >&2
            grep -v ': stored task ' "$l" | tail -40 | sed 's/^/    /' >&2
        done
        E2E_LOGS_SHOWN=1
    fi
    fl_cleanup "$rc"
}

ow() {
    python3 "$OUTSIDE_PY" "$@"
}

# ow_post ACKDIR CLIENTE SEQ [PORT]: POSTs {"titulo":"CLIENTE SEQ","cliente":..,"seq":..};
# prints the status; a 201 is recorded in ACKDIR/ack.CLIENTE; headers and body of the
# answer in $E2E_DIR/post.h and post.b.
ow_post() {
    local code
    code=$(curl -s --max-time 10 -D "$E2E_DIR/post.h" -o "$E2E_DIR/post.b" -w '%{http_code}' \
        -H 'Content-Type: application/json' \
        --data-binary "{\"titulo\":\"$2 $3\",\"cliente\":\"$2\",\"seq\":$3}" \
        "http://127.0.0.1:${4:-$PORT}/tareas")
    if [ "$code" = 201 ]; then
        mkdir -p "$1"
        echo "$3" >>"$1/ack.$2"
    fi
    echo "$code"
}

# ow_body_id: the id in the last ow_post answer.
ow_body_id() {
    sed -n 's/^{"id":\([0-9]*\),.*/\1/p' "$E2E_DIR/post.b"
}

# ow_via PID COMMAND...: runs COMMAND while every other worker of $SERVER_PID is stopped,
# so that its new connections can only be accepted by PID. A worker is never stopped while it
# holds a lock on the file (an idle one checks the file about once a second, and rewrites a
# file in another layout under the write lock): PID would wait for it and answer 503.
ow_via() {
    local pid=$1 w others="" rc try held
    shift
    for w in $(children_of "$SERVER_PID"); do
        [ "$w" != "$pid" ] && others="$others $w"
    done
    for try in $(seq 1 100); do
        for w in $others; do
            kill -STOP "$w" 2>/dev/null
        done
        held=""
        for w in $others; do
            # /proc/locks: "N: POSIX ADVISORY WRITE PID MAJ:MIN:INODE START END" for a holder.
            awk -v p="$w" '$2 == "POSIX" && $5 == p { found = 1 } END { exit !found }' \
                /proc/locks && held=$w
        done
        [ -z "$held" ] && break
        for w in $others; do
            kill -CONT "$w" 2>/dev/null
        done
        sleep 0.05
    done
    [ -z "$held" ] || fail "ow_via: worker $held still held a lock after $try tries"
    "$@"
    rc=$?
    for w in $others; do
        kill -CONT "$w" 2>/dev/null
    done
    return $rc
}

# ow_post_via PID ACKDIR CLIENTE SEQ: ow_post answered by worker PID.
ow_post_via() {
    local pid=$1
    shift
    ow_via "$pid" ow_post "$@"
}

# ow_health_all DESC TASKS: every worker answers GET /health with 200, its own pid and
# TASKS tasks.
ow_health_all() {
    local w body out
    for w in $(fl_workers); do
        body=$(ow_via "$w" curl -s --max-time 5 "http://127.0.0.1:$PORT/health")
        if out=$(ow health "$body" "$w" "$2" 2>&1); then
            pass "$1: worker $w: /health 200 with $2 tasks"
        else
            fail "$1: worker $w: /health: $out"
        fi
    done
}

# ow_health_refuses DESC STATUS REGEX: every worker answers GET /health with 503, a
# Retry-After header and {"status":"STATUS","error":...} whose error matches REGEX.
ow_health_refuses() {
    local w code st
    for w in $(fl_workers); do
        code=$(ow_via "$w" curl -s --max-time 5 -D "$E2E_DIR/h.h" -o "$E2E_DIR/h.b" \
            -w '%{http_code}' "http://127.0.0.1:$PORT/health")
        check_eq "$1: worker $w: /health status" 503 "$code"
        st=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("status"))' \
            "$E2E_DIR/h.b" 2>/dev/null)
        check_eq "$1: worker $w: /health says \"$2\"" "$2" "$st"
        check_match "$1: worker $w: /health gives the reason" "$3" "$(cat "$E2E_DIR/h.b")"
        check_match "$1: worker $w: /health has Retry-After" '^[Rr]etry-[Aa]fter: *[0-9]+' \
            "$(tr -d '\r' <"$E2E_DIR/h.h")"
    done
}

# ow_check DESC FILE ACKDIR [outside.py check options]: the file judged (a check).
ow_check() {
    local desc=$1 out
    shift
    if out=$(ow check "$@" 2>&1); then
        pass "$desc: $out"
    else
        fail "$desc: $out"
        [ -f "$1" ] && ow describe "$1" | sed 's/^/    /' >&2
    fi
}

# ow_after STAMPS: the moment the change returned (from an outside.py stamps file).
ow_after() {
    awk '{print $2}' "$1"
}

# ow_lines DIR: requests answered so far by a fault_load -l run in DIR.
ow_lines() {
    cat "$1"/log.* 2>/dev/null | wc -l
}

# ow_lines_ge DIR N: a command for wait_until.
ow_lines_ge() {
    [ "$(ow_lines "$1")" -ge "$2" ]
}

# ow_lines_after DIR NS: requests of fault_load -l in DIR sent at or after NS.
ow_lines_after() {
    cat "$1"/log.* 2>/dev/null | awk -v t="$2" '$2 >= t { n++ } END { print n + 0 }'
}

ow_lines_after_ge() {
    [ "$(ow_lines_after "$1" "$2")" -ge "$3" ]
}

# ow_load_start DIR ARGS...: fault_load -l on $PORT in the background (pid in LOAD_PID);
# ow_load_stop DIR: asks it to stop and waits for it.
ow_load_start() {
    local dir=$1
    shift
    mkdir -p "$dir"
    "$FAULT_LOAD" -p "$PORT" -o "$dir" -l "$@" >"$dir/load.out" 2>"$dir/load.err" &
    LOAD_PID=$!
    track_pid "$LOAD_PID"
}

ow_load_stop() {
    touch "$1/stop"
    wait_exit "$LOAD_PID" 20 || fail "fault_load in $1 did not stop within 20 s"
    note "load $(basename "$1"): $(cat "$1/load.out")"
    [ -s "$1/load.err" ] && sed 's/^/    load: /' "$1/load.err" | head -5 >&2
}

# ow_statuses DIR: the statuses a finished fault_load in DIR got ("201:N,500:M").
ow_statuses() {
    fl_field "$(cat "$1/load.out")" statuses
}

# ow_statuses_since DIR NS: statuses of requests sent at or after NS, "201:N 500:M".
ow_statuses_since() {
    cat "$1"/log.* 2>/dev/null | awk -v t="$2" '$2 >= t { c[$4]++ }
        END { for (s in c) printf "%s:%d\n", s, c[s] }' | sort | tr '\n' ' ' | sed 's/ $//'
}

ow_inode() {
    stat -c %i "$1"
}

# ow_start FILE ARGS...: start_server with 2 workers; the test case ends if it fails.
ow_start() {
    local f=$1
    shift
    start_server "$f" --workers 2 "$@" || return 1
    WORKERS=$(fl_workers)
    W1=$(echo "$WORKERS" | awk '{print $1}')
    W2=$(echo "$WORKERS" | awk '{print $2}')
    [ -n "$W2" ] || {
        fail "expected 2 workers, got '$WORKERS'"
        return 1
    }
}

# ow_stop: SIGTERM; the exit status must be 0.
ow_stop() {
    stop_server TERM 15
    check_eq "SIGTERM: exit status" 0 "$SERVER_STATUS"
}

# ow_saved_copies DIR: the copies the store saved beside DIR/tasks.json (.orig-, .torn-).
ow_saved_copies() {
    find "$1" -maxdepth 1 -name 'tasks.json.*-*' -printf '%f\n' | sort | tr '\n' ' ' |
        sed 's/ $//'
}

# ---------------------------------------------------------------- echo_reset

outside_echo_reset() {
    local d="$E2E_DIR/echo" f="$E2E_DIR/echo/tasks.json" acks="$E2E_DIR/echo/acks" i code
    mkdir -p "$d"
    ow_start "$f" || return
    for i in 1 2 3; do
        check_eq "POST $i before the reset" 201 "$(ow_post "$d/before" antes "$i")"
    done

    # Round 1: the POST comes first after the shell's reset.
    ow run "$d/stamps1" -- sh -c "echo \"[]\" > '$f'" || fail "echo \"[]\" > $f failed"
    check_eq "after echo: the file is what the shell wrote" '[]' "$(cat "$f")"
    code=$(ow_post_via "$W1" "$acks" r1 1)
    check_eq "echo \"[]\" >: next POST (worker $W1)" 201 "$code"
    check_eq "echo \"[]\" >: next POST gets id 1" 1 "$(ow_body_id)"
    ow_health_all "echo \"[]\" >, then 1 POST" 1
    code=$(ow_post_via "$W2" "$acks" r1 2)
    check_eq "echo \"[]\" >: POST on the other worker ($W2) gets id 2" "201 2" \
        "$code $(ow_body_id)"
    ow_health_all "echo \"[]\" >, then 2 POSTs" 2

    # Round 2: /health comes first after the reset, on each worker.
    rm -rf "$acks"
    ow run "$d/stamps2" -- sh -c "echo \"[]\" > '$f'" || fail "echo \"[]\" > $f failed"
    ow_health_all "second echo \"[]\" >, before any POST" 0
    code=$(ow_post_via "$W2" "$acks" r2 1)
    check_eq "second echo \"[]\" >: next POST (worker $W2) gets id 1" "201 1" "$code $(ow_body_id)"
    code=$(ow_post_via "$W1" "$acks" r2 2)
    check_eq "second echo \"[]\" >: POST on worker $W1 gets id 2" "201 2" "$code $(ow_body_id)"
    ow_health_all "second echo \"[]\" >, then 2 POSTs" 2
    check_eq "an empty list held no tasks: no copy saved beside the file" "" \
        "$(ow_saved_copies "$d")"
    ow_stop
    ow_check "after echo \"[]\" >" "$f" "$acks" --canonical --expect 2
}

# ---------------------------------------------------------------- rename_editor

outside_rename_editor() {
    local d="$E2E_DIR/editor" f="$E2E_DIR/editor/tasks.json" acks="$E2E_DIR/editor/acks"
    local i ino0 ino1 ino2 n
    mkdir -p "$d"
    ow_start "$f" || return
    for i in 1 2 3; do
        check_eq "POST $i before the save" 201 "$(ow_post "$acks" pre "$i")"
    done
    ino0=$(ow_inode "$f")

    # An editor's save: the list written to a temp file, renamed over tasks.json.
    note "$(ow editor "$f" "$d/stamps1")"
    ino1=$(ow_inode "$f")
    check_eq "the editor's save made a new file (another inode)" yes \
        "$([ "$ino1" != "$ino0" ] && echo yes || echo "no ($ino0)")"
    check_eq "POST on worker $W1 after the editor's save" "201 4" \
        "$(ow_post_via "$W1" "$acks" ed 1) $(ow_body_id)"
    check_eq "POST on worker $W2 after the editor's save" "201 5" \
        "$(ow_post_via "$W2" "$acks" ed 2) $(ow_body_id)"
    for i in $W1 $W2; do
        check_match "worker $i logged that it follows the new file" \
            "taskserver\[$i\]: warning: $f: replaced by someone else: following the new file \(inode $ino1, was $ino0\)" \
            "$(cat "$SERVER_LOG")"
    done
    ow_load_start "$d/load1" -c "$LOAD_CLIENTS" -n 25 -i a -t 8000
    wait_exit "$LOAD_PID" 30 || fail "load 1 did not finish within 30 s"
    check_eq "load after the editor's save: all 201" "201:$((LOAD_CLIENTS * 25))" \
        "$(ow_statuses "$d/load1")"
    n=$((3 + 2 + LOAD_CLIENTS * 25))
    ow_health_all "after the editor's save and a load" "$n"

    # sed -i writes a new file and renames it over tasks.json too.
    ow run "$d/stamps2" -- sed -i 's/"titulo":"pre 1"/"titulo":"pre 1 editada"/' "$f" ||
        fail "sed -i on $f failed"
    ino2=$(ow_inode "$f")
    check_eq "sed -i made a new file (another inode)" yes \
        "$([ "$ino2" != "$ino1" ] && echo yes || echo "no ($ino1)")"
    check_eq "POST on worker $W2 after sed -i" "201 $((n + 1))" \
        "$(ow_post_via "$W2" "$acks" sed 1) $(ow_body_id)"
    check_eq "POST on worker $W1 after sed -i" "201 $((n + 2))" \
        "$(ow_post_via "$W1" "$acks" sed 2) $(ow_body_id)"
    ow_load_start "$d/load2" -c "$LOAD_CLIENTS" -n 25 -i b -t 8000
    wait_exit "$LOAD_PID" 30 || fail "load 2 did not finish within 30 s"
    check_eq "load after sed -i: all 201" "201:$((LOAD_CLIENTS * 25))" \
        "$(ow_statuses "$d/load2")"
    n=$((n + 2 + LOAD_CLIENTS * 25))
    ow_health_all "after sed -i and a load" "$n"
    ow_stop
    check_match "the edit made by sed -i is in the file" '"titulo":"pre 1 editada"' "$(cat "$f")"
    cp "$d"/load1/log.* "$d"/load2/log.* "$acks"/
    ow_check "after the editor's save and sed -i" "$f" "$acks" --canonical --expect "$n"
    check_cmd "taskctl verify --expect $n" "$TASKCTL" -f "$f" verify --expect "$n"
}

# ---------------------------------------------------------------- rm

outside_rm() {
    local d="$E2E_DIR/rm" f="$E2E_DIR/rm/tasks.json" acks="$E2E_DIR/rm/acks" i n
    mkdir -p "$d"
    ow_start "$f" || return
    for i in 1 2 3; do
        check_eq "POST $i before rm" 201 "$(ow_post "$d/before" antes "$i")"
    done
    # The workers stopped across the rm and the look: each looks at the path about once a
    # second (api_check_file) and would make the new empty list before we look.
    kill -STOP "$W1" "$W2"
    ow run "$d/stamps" -- rm "$f" || fail "rm $f failed"
    check_eq "rm: the file is gone" no "$([ -e "$f" ] && echo yes || echo no)"
    kill -CONT "$W1" "$W2"
    check_eq "POST on worker $W1 after rm" "201 1" "$(ow_post_via "$W1" "$acks" rm 1) $(ow_body_id)"
    check_eq "after rm: a file is at the path again" yes "$([ -f "$f" ] && echo yes || echo no)"
    check_eq "POST on worker $W2 after rm" "201 2" "$(ow_post_via "$W2" "$acks" rm 2) $(ow_body_id)"
    ow_health_all "after rm and 2 POSTs" 2
    check_match "the store logged that the file was removed" \
        "$f: removed by someone else: following a new empty list there" "$(cat "$SERVER_LOG")"
    ow_load_start "$d/load" -c "$LOAD_CLIENTS" -n 25 -t 8000
    wait_exit "$LOAD_PID" 30 || fail "load did not finish within 30 s"
    check_eq "load after rm: all 201" "201:$((LOAD_CLIENTS * 25))" "$(ow_statuses "$d/load")"
    n=$((2 + LOAD_CLIENTS * 25))
    ow_health_all "after rm and a load" "$n"

    # A second rm, with /health the first to notice.
    ow run "$d/stamps2" -- rm "$f" || fail "second rm $f failed"
    ow_health_all "second rm, before any POST" 0
    check_eq "POST after the second rm" "201 1" "$(ow_post_via "$W2" "$d/acks2" rm2 1) $(ow_body_id)"
    ow_stop
    ow_check "after the second rm" "$f" "$d/acks2" --canonical --expect 1
}

# ---------------------------------------------------------------- hand_line

outside_hand_line() {
    local d="$E2E_DIR/hand" f="$E2E_DIR/hand/tasks.json" acks="$E2E_DIR/hand/acks" i size w code
    mkdir -p "$d"
    ow_start "$f" || return
    for i in 1 2 3; do
        check_eq "POST $i before the hand-made line" 201 "$(ow_post "$acks" pre "$i")"
    done
    size=$(stat -c %s "$f")
    ow run "$d/stamps" -- sh -c "echo '{\"id\":99,\"titulo\":\"a mano\"}' >> '$f'" ||
        fail "echo >> $f failed"
    cp "$f" "$d/damaged.copy"
    for w in $W1 $W2; do
        code=$(ow_post_via "$w" "$acks" hand "$w")
        check_eq "POST on worker $w behind a hand-made line: refused" 500 "$code"
        check_match "POST on worker $w: the error says the file is damaged" 'damaged' \
            "$(cat "$E2E_DIR/post.b")"
        code=$(ow_via "$w" http_status "http://127.0.0.1:$PORT/tareas")
        check_eq "GET /tareas on worker $w behind a hand-made line" 500 "$code"
    done
    check_eq "a second POST on worker $W1: still refused" 500 "$(ow_post_via "$W1" "$acks" hand 1)"
    if cmp -s "$f" "$d/damaged.copy"; then
        pass "the refused file is byte for byte what the hand left"
    else
        fail "expected $f unchanged after the refusals, got it modified"
        cmp "$f" "$d/damaged.copy" >&2
    fi
    ow_health_refuses "hand-made line" damaged "byte $size: "
    check_match "the log names the file and the byte" \
        "error: $f: byte $size: .*refusing to write behind it" "$(cat "$SERVER_LOG")"
    n=$(grep -c "error: $f: byte $size:" "$SERVER_LOG")
    check_eq "the damage is logged once per worker, not once per request (<= 2 lines)" yes \
        "$([ "$n" -le 2 ] && echo yes || echo "no ($n lines)")"

    # Fixed by hand: the last line removed (sed -i writes a new file and renames it).
    # shellcheck disable=SC2016 # sed's $ (the last line), not the shell's
    ow run "$d/stamps2" -- sed -i '$d' "$f" || fail "sed -i '\$d' $f failed"
    check_eq "POST on worker $W2 after the fix" "201 4" "$(ow_post_via "$W2" "$acks" fixed 1) $(ow_body_id)"
    check_eq "POST on worker $W1 after the fix" "201 5" "$(ow_post_via "$W1" "$acks" fixed 2) $(ow_body_id)"
    ow_health_all "after the fix" 5

    # A hand-made record closed with its own "]": the file ends like one of ours, but the
    # record follows a "]", not the ",\n" of record 5.
    size=$(stat -c %s "$f")
    ow run "$d/stamps3" -- sh -c "echo '{\"id\":99,\"titulo\":\"a mano\"}' >> '$f'; echo ']' >> '$f'" ||
        fail "echo >> $f failed"
    cp "$f" "$d/damaged2.copy"
    for w in $W1 $W2; do
        check_eq "POST on worker $w behind a hand-made record and \"]\": refused" 500 \
            "$(ow_post_via "$w" "$acks" hand2 "$w")"
    done
    if cmp -s "$f" "$d/damaged2.copy"; then
        pass "hand-made record and \"]\": the file is byte for byte what the hand left"
    else
        fail "hand-made record and \"]\": expected $f unchanged, got it modified"
    fi
    ow_health_refuses "hand-made record and \"]\"" damaged "byte $size: "
    # shellcheck disable=SC2016 # sed's $ (the last line), not the shell's
    ow run "$d/stamps4" -- sed -i -e '/"a mano"/d' -e '$d' "$f" || fail "sed -i on $f failed"
    check_eq "POST after the second fix" "201 6" "$(ow_post_via "$W1" "$acks" fixed 3) $(ow_body_id)"
    ow_health_all "after the second fix" 6
    ow_stop
    ow_check "after the fixes by hand" "$f" "$acks" --canonical --expect 6
}

# ---------------------------------------------------------------- pretty_in_place

outside_pretty_in_place() {
    local d="$E2E_DIR/pretty" f="$E2E_DIR/pretty/tasks.json" acks="$E2E_DIR/pretty/acks"
    local i ino0 saved n
    mkdir -p "$d"
    ow_start "$f" || return
    for i in 1 2 3; do
        check_eq "POST $i before the rewrite" 201 "$(ow_post "$acks" pre "$i")"
    done
    ino0=$(ow_inode "$f")
    note "$(ow pretty "$f" "$d/stamps")"
    cp "$f" "$d/pretty.copy"
    check_eq "json.dump in place kept the inode" "$ino0" "$(ow_inode "$f")"
    check_match "the file is pretty-printed now" '^\[$' "$(head -1 "$f")"
    check_eq "POST on worker $W1 after the rewrite" "201 4" \
        "$(ow_post_via "$W1" "$acks" pr 1) $(ow_body_id)"
    check_eq "POST on worker $W2 after the rewrite" "201 5" \
        "$(ow_post_via "$W2" "$acks" pr 2) $(ow_body_id)"
    saved=$(ow_saved_copies "$d")
    check_match "the original was saved beside the file" '^tasks\.json\.orig-[0-9TZ]+$' "$saved"
    if [ -n "$saved" ] && cmp -s "$d/$saved" "$d/pretty.copy"; then
        pass "the saved original is the pretty-printed file byte for byte"
    else
        fail "expected $d/$saved to be the pretty-printed file"
    fi
    ow_load_start "$d/load" -c "$LOAD_CLIENTS" -n 25 -t 8000
    wait_exit "$LOAD_PID" 30 || fail "load did not finish within 30 s"
    check_eq "load after the rewrite: all 201" "201:$((LOAD_CLIENTS * 25))" \
        "$(ow_statuses "$d/load")"
    n=$((5 + LOAD_CLIENTS * 25))
    ow_health_all "after the rewrite and a load" "$n"
    ow_stop
    cp "$d"/load/log.* "$acks"/
    ow_check "after json.dump(indent=2) in place" "$f" "$acks" --canonical --expect "$n"
}

# ---------------------------------------------------------------- cp_idle

outside_cp_idle() {
    local d="$E2E_DIR/cpidle" f="$E2E_DIR/cpidle/tasks.json" acks="$E2E_DIR/cpidle/acks" i ino
    mkdir -p "$d"
    ow_start "$f" || return
    for i in 1 2 3; do
        check_eq "POST $i before the backup" 201 "$(ow_post "$acks" pre "$i")"
    done
    cp "$f" "$d/backup.json"
    for i in 1 2 3; do
        check_eq "POST $i after the backup" 201 "$(ow_post "$d/lost" post "$i")"
    done
    ino=$(ow_inode "$f")
    ow run "$d/stamps" -- cp "$d/backup.json" "$f" || fail "cp backup.json $f failed"
    check_eq "cp kept the inode (it writes in place)" "$ino" "$(ow_inode "$f")"
    check_eq "POST on worker $W1 after cp" "201 4" "$(ow_post_via "$W1" "$acks" cp 1) $(ow_body_id)"
    check_eq "POST on worker $W2 after cp" "201 5" "$(ow_post_via "$W2" "$acks" cp 2) $(ow_body_id)"
    ow_health_all "after cp and 2 POSTs" 5
    ow_stop
    ow_check "after cp backup.json tasks.json" "$f" "$acks" --canonical --expect 5
}

# ---------------------------------------------------------------- cp_under_load

# ow_prefill FILE N: a canonical list of N tasks written directly (much faster than POSTs).
ow_prefill() {
    awk -v n="$2" 'BEGIN {
        print "["
        for (i = 1; i <= n; i++)
            printf "{\"id\":%d,\"titulo\":\"copia %d\",\"cliente\":\"pre\",\"seq\":%d,\"creada\":\"2026-01-01T00:00:00Z\",\"pid\":1}%s\n", i, i, i, i < n ? "," : ""
        print "]"
    }' >"$1"
}

# One round: a list of 20,000 tasks and its backup, a server, a load; cp of the backup
# while the load runs (cp copies 2 MB while the appends go on). Sets ROUND_RESULT to
# adopted or refused.
outside_cp_round() {
    local r=$1 d="$E2E_DIR/cpload/$1" f after nuls w code sha1 sha2 since fails0=$E2E_FAILS
    f="$d/tasks.json"
    mkdir -p "$d"
    ROUND_RESULT=failed
    ow_prefill "$f" 20000
    cp "$f" "$d/backup.json"
    ow_start "$f" --quiet --lock-timeout 5 || return
    ow_load_start "$d/load" -c "$LOAD_CLIENTS" -d 15000 -t 8000
    wait_until 10 ow_lines_ge "$d/load" 1000 ||
        fail "round $r: the load answered only $(ow_lines "$d/load") requests in 10 s"
    ow run "$d/stamps" -- cp "$d/backup.json" "$f" || fail "round $r: cp failed"
    after=$(ow_after "$d/stamps")
    seq 1 20000 >"$d/load/ack.pre" # what cp put back must stay
    note "round $r: cp took $((($(awk '{print $2 - $1}' "$d/stamps") + 500000) / 1000000)) ms"
    wait_until 10 ow_lines_after_ge "$d/load" "$after" 300 ||
        fail "round $r: only $(ow_lines_after "$d/load" "$after") requests after cp within 10 s"
    ow_load_stop "$d/load"
    since=$(ow_statuses_since "$d/load" "$after")
    nuls=$(ow nuls "$f")
    check_eq "round $r: no NUL bytes in the file" 0 "$nuls"
    if python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$f" 2>/dev/null; then
        ROUND_RESULT=adopted
        note "round $r: adopted; answers to requests sent after cp returned: $since"
        check_eq "round $r: adopted: only 201s for requests sent after cp returned" yes \
            "$(printf '%s' "$since" | grep -Eq '^201:[0-9]+$' && echo yes || echo "no ($since)")"
        ow_health_all "round $r: adopted" "$(fl_task_count "$f")"
        check_eq "round $r: adopted: POST after the load" 201 \
            "$(ow_post "$d/load" after 1)"
        ow_stop
        ow_check "round $r: adopted" "$f" "$d/load" --after "$after" --canonical
    else
        ROUND_RESULT=refused
        ow describe "$f" | sed "s/^/# round $r: /" >&2
        note "round $r: refused; answers to requests sent after cp returned: $since"
        # Never a 201 on top of damage: once cp has returned nobody but the server writes,
        # so a 201 for a request sent after that went behind the damage.
        check_eq "round $r: refused: no 201 for a request sent after cp returned" yes \
            "$(printf '%s' "$since" | grep -q '201:' && echo "no ($since)" || echo yes)"
        sha1=$(sha256sum <"$f")
        for w in $W1 $W2; do
            code=$(ow_post_via "$w" "$d/load" "after$w" 1)
            check_eq "round $r: refused: POST on worker $w" 500 "$code"
        done
        ow_health_refuses "round $r: refused" damaged 'byte [0-9]+'
        sha2=$(sha256sum <"$f")
        check_eq "round $r: refused: the file is left as it is" "$sha1" "$sha2"
        ow_stop
    fi
    [ "$E2E_FAILS" -eq "$fails0" ] || ROUND_RESULT="$ROUND_RESULT-wrongly"
    note "round $r: $ROUND_RESULT"
}

# ROUNDS (default 5, OUTSIDE_ROUNDS): the interleaving of cp with an append differs each time.
outside_cp_under_load() {
    local r rounds=${OUTSIDE_ROUNDS:-5} results=""
    for r in $(seq 1 "$rounds"); do
        outside_cp_round "$r"
        results="$results $ROUND_RESULT"
    done
    note "cp under load, $rounds rounds:$(echo "$results" | tr ' ' '\n' | grep . | sort | uniq -c |
        awk '{printf " %s %s,", $1, $2}' | sed 's/,$//')"
}

# ---------------------------------------------------------------- no_file

outside_no_file() {
    local d="$E2E_DIR/nofile" f="$E2E_DIR/nofile/tasks.json" acks="$E2E_DIR/nofile/acks"
    local wrap=() victim fresh w code t0 ms i
    mkdir -p "$d"
    if [ "$(id -u)" = 0 ]; then
        # Root opens a chmod 000 file anyway: the server runs as nobody.
        command -v setpriv >/dev/null || skip "running as root and setpriv is missing"
        id nobody >/dev/null 2>&1 || skip "running as root and the user nobody is missing"
        wrap=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups --)
        "${wrap[@]}" test -x "$TASKSERVER" ||
            skip "nobody cannot run $TASKSERVER (a parent directory is private)"
        chmod 711 "$E2E_DIR"
        chown nobody "$d"
        printf '#!/bin/sh\nexec %s "%s" "$@"\n' "${wrap[*]}" "$TASKSERVER" >"$E2E_DIR/as_nobody.sh"
        chmod 755 "$E2E_DIR/as_nobody.sh"
        TASKSERVER="$E2E_DIR/as_nobody.sh" ow_start "$f" --grace 2 || return
        check_eq "the server runs as nobody" "$(id -u nobody)" "$(stat -c %u "/proc/$SERVER_PID")"
    else
        ow_start "$f" --grace 2 || return
    fi
    for i in 1 2; do
        check_eq "POST $i" 201 "$(ow_post "$acks" pre "$i")"
    done

    # chmod 000, then a worker dies: its replacement cannot open the file.
    chmod 000 "$f"
    victim=$W1
    kill -KILL "$victim"
    for i in $(seq 1 50); do
        fresh=$(fl_workers | tr ' ' '\n' | grep -vx "$W2" | grep -vx "$victim" | head -1)
        [ -n "$fresh" ] && break
        sleep 0.1
    done
    if [ -z "$fresh" ]; then
        fail "no worker replaced $victim within 5 s"
        fl_dump_log
        return
    fi
    note "worker $victim killed, replaced by $fresh"
    t0=$(now_ms)
    code=$(ow_via "$fresh" curl -s --max-time 5 -D "$d/p.h" -o "$d/p.b" -w '%{http_code}' \
        -H 'Content-Type: application/json' --data-binary '{"titulo":"sin archivo"}' \
        "http://127.0.0.1:$PORT/tareas")
    ms=$(($(now_ms) - t0))
    check_eq "chmod 000: POST on the new worker $fresh: 503 (in $ms ms)" 503 "$code"
    check_match "chmod 000: the 503 says why" 'tasks.json cannot be used: .*Permission denied' \
        "$(cat "$d/p.b")"
    check_match "chmod 000: the 503 has Retry-After" '^[Rr]etry-[Aa]fter: *[0-9]+' \
        "$(tr -d '\r' <"$d/p.h")"
    code=$(ow_via "$fresh" curl -s --max-time 5 -o "$d/h.b" -w '%{http_code}' \
        "http://127.0.0.1:$PORT/health")
    check_eq "chmod 000: /health on the new worker" 503 "$code"
    check_match "chmod 000: /health on the new worker says why" \
        '"status":"unavailable","error":".*Permission denied' "$(cat "$d/h.b")"
    check_eq "chmod 000: GET /tareas on the new worker" 503 \
        "$(ow_via "$fresh" http_status --max-time 5 "http://127.0.0.1:$PORT/tareas")"
    check_eq "chmod 000: the old worker $W2 still has the file open and stores" 201 \
        "$(ow_post_via "$W2" "$acks" old 1)"
    check_match "the new worker logged why it answers 503" \
        "taskserver\[$fresh\]: error: .*$f.*Permission denied" "$(cat "$SERVER_LOG")"
    if wait_exit "$SERVER_PID" 4; then
        fail "the master exited (status $WAIT_STATUS) although worker $W2 can use the file"
        SERVER_PID=""
        fl_dump_log
        return
    fi
    pass "the master keeps running while one worker can use the file (4 s > --grace 2)"

    chmod 644 "$f"
    if wait_until 5 ow_via "$fresh" fl_answers 200 --max-time 1 "http://127.0.0.1:$PORT/health"; then
        pass "chmod back: the new worker serves within 5 s, no restart"
    else
        fail "chmod back: the new worker $fresh still refuses after 5 s"
    fi
    check_eq "chmod back: POST on the new worker" 201 "$(ow_post_via "$fresh" "$acks" fresh 1)"
    ow_health_all "chmod back" 4
    cp "$f" "$d/saved.json"

    # A directory where the file was: nobody can use it; the master gives up after --grace.
    rm "$f"
    mkdir "$f"
    t0=$(now_ms)
    for w in $fresh $W2; do
        fl_time_ms ow_via "$w" curl -s --max-time 3 -o "$d/dir.b" -w '%{http_code}' \
            -H 'Content-Type: application/json' --data-binary '{"titulo":"directorio"}' \
            "http://127.0.0.1:$PORT/tareas"
        check_eq "a directory at the path: POST on worker $w answers 503 in under 2 s" "503 fast" \
            "$FL_OUT $([ "$FL_MS" -le 2000 ] && echo fast || echo "slow ($FL_MS ms)")"
        check_match "a directory at the path: worker $w says why" \
            'tasks.json cannot be used: .*(not a regular file|[Ii]s a directory)' "$(cat "$d/dir.b")"
        fl_time_ms ow_via "$w" curl -s --max-time 3 -o "$d/dirh.b" -w '%{http_code}' \
            "http://127.0.0.1:$PORT/health"
        check_eq "a directory at the path: /health on worker $w answers 503 in under 2 s" \
            "503 fast" "$FL_OUT $([ "$FL_MS" -le 2000 ] && echo fast || echo "slow ($FL_MS ms)")"
        check_match "a directory at the path: /health on worker $w says unavailable" \
            '"status":"unavailable"' "$(cat "$d/dirh.b")"
    done
    if wait_exit "$SERVER_PID" 10; then
        ms=$(($(now_ms) - t0))
        check_eq "no worker can use the file: the master exits with status 1" 1 "$WAIT_STATUS"
        check_eq "... after --grace 2 s, within 8 s" yes \
            "$([ "$ms" -ge 1900 ] && [ "$ms" -le 8000 ] && echo yes || echo "no ($ms ms)")"
        note "the master exited $ms ms after the directory appeared"
    else
        fail "the master did not exit within 10 s of a directory at the path (--grace 2)"
        fl_dump_log
    fi
    local master=$SERVER_PID
    SERVER_PID=""
    check_sanitizer_log "$SERVER_LOG"
    check_match "the master logged why it exits" \
        "taskserver\[$master\]: error: no worker has been able to use $f for [0-9.]+ s \(--grace\): exiting with status 1" \
        "$(cat "$SERVER_LOG")"
    local alive=""
    for w in $fresh $W2; do
        kill -0 "$w" 2>/dev/null && alive="$alive $w"
    done
    check_eq "no worker left running" "" "$alive"
    ow_check "the file as it was before the directory" "$d/saved.json" "$acks" --canonical --expect 4
}

# ---------------------------------------------------------------- no_file_probes

# A directory at the path while an orchestrator probes /health (one request every 0.25 s, as
# Docker's healthcheck or a load balancer would, no worker addressed on purpose): no worker
# can use the file, so the master must exit with status 1 after --grace, whichever worker
# the probes happen to reach.
outside_no_file_probes() {
    local d="$E2E_DIR/probes" f="$E2E_DIR/probes/tasks.json" acks="$E2E_DIR/probes/acks"
    local i code codes="" t0 ms exited=""
    mkdir -p "$d"
    ow_start "$f" --grace 2 || return
    check_eq "POST before" 201 "$(ow_post "$acks" pre 1)"
    rm "$f"
    mkdir "$f"
    t0=$(now_ms)
    for i in $(seq 1 40); do
        code=$(http_status --max-time 2 "http://127.0.0.1:$PORT/health")
        codes="${codes:+$codes }$code"
        if wait_exit "$SERVER_PID" 0; then
            exited=$WAIT_STATUS
            break
        fi
        sleep 0.25
    done
    ms=$(($(now_ms) - t0))
    note "probes: $(echo "$codes" | tr ' ' '\n' | sort | uniq -c | awk '{printf "%s x %s, ", $1, $2}')over $ms ms"
    note "workers that said why they answer 503: $(grep -o 'taskserver\[[0-9]*\]: error: .*not a regular file' "$SERVER_LOG" | cut -d: -f1 | sort -u | tr '\n' ' ')"
    check_eq "every probe answered 503 (or nothing once the master was gone)" yes \
        "$(echo "$codes" | tr ' ' '\n' | grep -Ev '^(503|000|)$' | head -1 | grep -q . && echo "no ($codes)" || echo yes)"
    if [ -n "$exited" ]; then
        check_eq "the master exits with status 1" 1 "$exited"
        check_eq "... within 8 s (--grace 2)" yes \
            "$([ "$ms" -le 8000 ] && echo yes || echo "no ($ms ms)")"
        SERVER_PID=""
        check_sanitizer_log "$SERVER_LOG"
    else
        fail "a directory at the path, /health probed every 0.25 s for $ms ms: the master is still running (expected exit status 1 after --grace 2)"
        fl_dump_log 8
        stop_server TERM 15
    fi
}

# ---------------------------------------------------------------- two_servers

outside_two_servers() {
    fl_need_locking "two servers share the file through its locks"
    local d="$E2E_DIR/two" f="$E2E_DIR/two/tasks.json" p1 p2 s1 s2 l1 l2 after n s
    mkdir -p "$d"
    ow_start "$f" --quiet || return
    p1=$PORT s1=$SERVER_PID l1=$SERVER_LOG
    ow_start "$f" --quiet || return
    p2=$PORT s2=$SERVER_PID l2=$SERVER_LOG
    PORT=$p1
    ow_load_start "$d/load" -c 3 -d 20000 -i a -t 8000
    local la=$LOAD_PID
    PORT=$p2
    ow_load_start "$d/loadb" -c 3 -d 20000 -i b -t 8000
    local lb=$LOAD_PID
    { wait_until 10 ow_lines_ge "$d/load" 200 && wait_until 10 ow_lines_ge "$d/loadb" 200; } ||
        fail "the loads answered $(ow_lines "$d/load") + $(ow_lines "$d/loadb") requests in 10 s"
    # The editor's save under load: read, write a temp file, rename (retried if the read
    # caught an append half-way: that is the editor's problem, not the server's).
    for _ in 1 2 3 4 5; do
        ow editor "$f" "$d/stamps" >/dev/null 2>"$d/editor.err" && break
    done
    [ -s "$d/stamps" ] || fail "the editor's save failed 5 times: $(cat "$d/editor.err")"
    after=$(ow_after "$d/stamps")
    { wait_until 10 ow_lines_after_ge "$d/load" "$after" 200 &&
        wait_until 10 ow_lines_after_ge "$d/loadb" "$after" 200; } ||
        fail "after the rename: $(ow_lines_after "$d/load" "$after") + $(ow_lines_after "$d/loadb" "$after") requests in 10 s"
    LOAD_PID=$la
    ow_load_stop "$d/load"
    LOAD_PID=$lb
    ow_load_stop "$d/loadb"
    note "server 1, after the rename: $(ow_statuses_since "$d/load" "$after")"
    note "server 2, after the rename: $(ow_statuses_since "$d/loadb" "$after")"
    check_eq "only 201s for requests sent after the rename (server 1)" yes \
        "$(ow_statuses_since "$d/load" "$after" | grep -Eq '^201:[0-9]+$' && echo yes || echo no)"
    check_eq "only 201s for requests sent after the rename (server 2)" yes \
        "$(ow_statuses_since "$d/loadb" "$after" | grep -Eq '^201:[0-9]+$' && echo yes || echo no)"
    n=$(fl_task_count "$f")
    SERVER_PID=$s1 PORT=$p1
    ow_health_all "server 1" "$n"
    SERVER_PID=$s2 PORT=$p2
    ow_health_all "server 2" "$n"
    for s in "$l1" "$l2"; do
        check_match "$(basename "$s"): the server followed the new file" \
            "$f: replaced by someone else: following the new file" "$(cat "$s")"
    done
    SERVER_PID=$s1 SERVER_LOG=$l1
    ow_stop
    SERVER_PID=$s2 SERVER_LOG=$l2
    ow_stop
    cp "$d"/loadb/log.* "$d/load/"
    ow_check "two servers, one rename" "$f" "$d/load" --after "$after" --canonical
}

# ---------------------------------------------------------------- stale_save

outside_stale_save() {
    fl_need_locking "the tasks the stale save drops are the ones the locked server stored"
    local d="$E2E_DIR/stale" f="$E2E_DIR/stale/tasks.json" after n out
    mkdir -p "$d"
    ow_start "$f" --quiet || return
    ow_load_start "$d/load" -c "$LOAD_CLIENTS" -d 20000 -t 8000
    wait_until 10 ow_lines_ge "$d/load" 200 ||
        fail "the load answered only $(ow_lines "$d/load") requests in 10 s"
    out=$(ow stale "$f" "$d/stamps" 300 2>&1) || fail "the stale save failed: $out"
    note "$out"
    after=$(ow_after "$d/stamps")
    wait_until 10 ow_lines_after_ge "$d/load" "$after" 200 ||
        fail "after the save: $(ow_lines_after "$d/load" "$after") requests in 10 s"
    ow_load_stop "$d/load"
    check_eq "only 201s for requests sent after the save" yes \
        "$(ow_statuses_since "$d/load" "$after" | grep -Eq '^201:[0-9]+$' && echo yes || echo no)"
    n=$(fl_task_count "$f")
    ow_health_all "after the stale save" "$n"
    ow_stop
    check_eq "one copy of the replaced file kept, however many workers adopted the new one" 1 \
        "$(find "$d" -maxdepth 1 -name 'tasks.json.replaced-*' | wc -l)"
    check_match "the log says how many tasks the new file lacks and where they are" \
        "error: $f: replaced by a file with [0-9]+ tasks; the one it replaced had [0-9]+ .*kept as $f\.replaced-" \
        "$(cat "$SERVER_LOG")"
    ow_check "stale save: every 201 in the list or in the kept copy" "$f" "$d/load" \
        --after "$after" --canonical --kept
}

# ---------------------------------------------------------------- reset_under_load

outside_reset_under_load() {
    fl_need_locking "taskctl reset and the server exclude each other through the lock"
    local d="$E2E_DIR/reset" f="$E2E_DIR/reset/tasks.json" after
    mkdir -p "$d"
    ow_start "$f" --quiet || return
    ow_load_start "$d/load" -c "$LOAD_CLIENTS" -d 20000 -t 8000
    wait_until 10 ow_lines_ge "$d/load" 300 ||
        fail "the load answered only $(ow_lines "$d/load") requests in 10 s"
    ow run "$d/stamps" -- "$TASKCTL" -f "$f" reset || fail "taskctl reset failed"
    after=$(ow_after "$d/stamps")
    wait_until 10 ow_lines_after_ge "$d/load" "$after" 300 ||
        fail "only $(ow_lines_after "$d/load" "$after") requests after the reset within 10 s"
    ow_load_stop "$d/load"
    note "after the reset: $(ow_statuses_since "$d/load" "$after")"
    check_eq "only 201s after the reset" yes \
        "$(ow_statuses_since "$d/load" "$after" | grep -Eq '^201:[0-9]+$' && echo yes || echo no)"
    ow_health_all "after the reset" "$(fl_task_count "$f")"
    ow_stop
    ow_check "taskctl reset under load" "$f" "$d/load" --after "$after" --canonical
}

# ---------------------------------------------------------------- outside_lock

outside_outside_lock() {
    fl_need_locking "no lock to hold without locks"
    local d="$E2E_DIR/lock" f="$E2E_DIR/lock/tasks.json" acks="$E2E_DIR/lock/acks" holder
    local t0 ms code ok=0 total=0 end
    mkdir -p "$d"
    ow_start "$f" --lock-timeout 1 || return
    check_eq "POST before the lock" 201 "$(ow_post "$acks" pre 1)"
    python3 "$OUTSIDE_PY" lock "$f" "$d/ready" 60 &
    holder=$!
    track_pid "$holder"
    wait_until 5 test -e "$d/ready" || fail "python3 did not take the lock within 5 s"
    t0=$(now_ms)
    code=$(ow_post "$acks" held 1)
    ms=$(($(now_ms) - t0))
    check_eq "POST while another program holds the lock: status" 503 "$code"
    check_eq "... answered after --lock-timeout 1 (0.9-4 s)" yes \
        "$([ "$ms" -ge 900 ] && [ "$ms" -le 4000 ] && echo yes || echo "no ($ms ms)")"
    check_match "... with Retry-After" '^[Rr]etry-[Aa]fter: *[0-9]+' "$(tr -d '\r' <"$E2E_DIR/post.h")"
    check_match "... and the reason" 'busy' "$(cat "$E2E_DIR/post.b")"
    # Reads go on meanwhile: GET /tareas and /health for 2 s.
    end=$(($(now_ms) + 2000))
    while [ "$(now_ms)" -lt "$end" ] && [ $total -lt 200 ]; do
        [ "$(http_status --max-time 2 "http://127.0.0.1:$PORT/tareas")" = 200 ] && ok=$((ok + 1))
        [ "$(http_status --max-time 2 "http://127.0.0.1:$PORT/health")" = 200 ] && ok=$((ok + 1))
        total=$((total + 2))
    done
    note "while the lock was held: $ok of $total GETs answered 200 in 2 s"
    check_eq "GET /tareas and /health while the lock is held: >= 10 answers of 200 in 2 s" yes \
        "$([ $ok -ge 10 ] && echo yes || echo "no ($ok of $total)")"
    check_eq "GET /tareas while the lock is held: still the stored task" 1 \
        "$(curl -s --max-time 5 "http://127.0.0.1:$PORT/tareas" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
    kill -TERM "$holder"
    wait_exit "$holder" 5 || fail "the lock holder did not exit within 5 s"
    check_eq "lock released: POST" 201 "$(ow_post "$acks" after 1)"
    check_eq "lock released: a second POST" 201 "$(ow_post "$acks" after 2)"
    ow_health_all "lock released" 3
    ow_stop
    ow_check "after the outside lock" "$f" "$acks" --canonical --expect 3
}

# ---------------------------------------------------------------- strict_json

outside_strict_json() {
    local d="$E2E_DIR/strict" f="$E2E_DIR/strict/tasks.json" acks="$E2E_DIR/strict/acks" s code
    mkdir -p "$d"
    ow_start "$f" || return
    for s in 070 1.0 1e2 -0 9007199254740990.9 00 1E2 01.5 -1 '"7"'; do
        code=$(curl -s --max-time 5 -o "$d/b" -w '%{http_code}' -H 'Content-Type: application/json' \
            --data-binary "{\"titulo\":\"estricta\",\"cliente\":\"s\",\"seq\":$s}" \
            "http://127.0.0.1:$PORT/tareas")
        check_eq "seq $s: 400" 400 "$code"
        check_match "seq $s: the error names seq" '"error":".*seq' "$(cat "$d/b")"
    done
    check_eq "seq 70: 201" "201 1" "$(ow_post "$acks" s 70) $(ow_body_id)"
    check_eq "seq 0: 201" "201 2" "$(ow_post "$acks" s 0) $(ow_body_id)"
    check_eq "GET /tareas/01: 404" 404 "$(http_status "http://127.0.0.1:$PORT/tareas/01")"
    check_eq "GET /tareas/001: 404" 404 "$(http_status "http://127.0.0.1:$PORT/tareas/001")"
    check_eq "GET /tareas/+1: 404" 404 "$(http_status "http://127.0.0.1:$PORT/tareas/+1")"
    check_eq "GET /tareas/1: 200" 200 "$(http_status "http://127.0.0.1:$PORT/tareas/1")"
    check_match "GET /tareas/1: task 1" '^\{"id":1,' "$(curl -s --max-time 5 "http://127.0.0.1:$PORT/tareas/1")"
    ow_stop
    ow_check "only the valid tasks stored" "$f" "$acks" --canonical --expect 2
}

# ---------------------------------------------------------------- balance

# ow_fds PID: open descriptors of PID.
ow_fds() {
    find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

ow_fds_ge() {
    [ $(($(ow_fds "$1") + $(ow_fds "$2"))) -ge "$3" ]
}

outside_balance() {
    ulimit -n 20000 2>/dev/null || skip "cannot raise ulimit -n to 20000 (hard limit $(ulimit -Hn))"
    local d="$E2E_DIR/balance" f="$E2E_DIR/balance/tasks.json" acks="$E2E_DIR/balance/acks"
    local base1 base2 hold1 hold2 i f1 f2 code out
    mkdir -p "$d"
    ow_start "$f" --quiet --max-connections 3100 --header-timeout 60 --keepalive-timeout 60 ||
        return
    base1=$(ow_fds "$W1")
    base2=$(ow_fds "$W2")
    "$RAW_HTTP" hold -p "$PORT" -n 6000 -d 60000 >"$d/hold1.out" 2>"$d/hold1.err" &
    hold1=$!
    track_pid "$hold1"
    if ! wait_until 30 ow_fds_ge "$W1" "$W2" $((base1 + base2 + 6000)); then
        fail "6,000 idle connections: after 30 s worker $W1 holds $(($(ow_fds "$W1") - base1)) and worker $W2 $(($(ow_fds "$W2") - base2)), not 6,000 together"
        kill -TERM "$hold1" 2>/dev/null
        wait "$hold1" 2>/dev/null
        note "idle clients: $(cat "$d/hold1.out")"
        return
    fi
    f1=$(($(ow_fds "$W1") - base1))
    f2=$(($(ow_fds "$W2") - base2))
    note "6,000 idle connections: worker $W1 holds $f1, worker $W2 holds $f2"
    check_eq "no worker holds more than its 3,100" yes \
        "$([ $f1 -le 3100 ] && [ $f2 -le 3100 ] && echo yes || echo "no ($f1, $f2)")"
    for i in 1 2 3 4 5; do
        fl_time_ms http_status --max-time 5 "http://127.0.0.1:$PORT/health"
        check_eq "6,000 idle: GET /health $i served (not 503)" 200 "$FL_OUT"
    done
    check_eq "6,000 idle: POST served" 201 "$(ow_post "$acks" b 1)"
    check_eq "6,000 idle: POST served again" 201 "$(ow_post "$acks" b 2)"

    # 300 more: both workers full; a new request is refused at once, not left hanging.
    "$RAW_HTTP" hold -p "$PORT" -n 300 -d 60000 >"$d/hold2.out" 2>"$d/hold2.err" &
    hold2=$!
    track_pid "$hold2"
    if ! wait_until 20 ow_fds_ge "$W1" "$W2" $((base1 + base2 + 6200)); then
        fail "6,300 connections: after 20 s worker $W1 holds $(($(ow_fds "$W1") - base1)) and worker $W2 $(($(ow_fds "$W2") - base2)), not 6,200 together"
    fi
    note "6,300 connections: worker $W1 holds $(($(ow_fds "$W1") - base1)), worker $W2 $(($(ow_fds "$W2") - base2))"
    fl_time_ms curl -s --max-time 5 -o "$d/full.b" -w '%{http_code}' "http://127.0.0.1:$PORT/health"
    check_eq "both workers full: a new request gets 503 within 5 s" "503" "$FL_OUT"
    note "both workers full: $FL_OUT in $FL_MS ms: $(head -c 200 "$d/full.b")"
    kill -TERM "$hold1" "$hold2" 2>/dev/null
    wait "$hold1" "$hold2" 2>/dev/null
    if wait_until 10 fl_answers 200 --max-time 1 "http://127.0.0.1:$PORT/health"; then
        pass "idle clients gone: served again"
    else
        fail "idle clients gone: still no 200 after 10 s"
    fi
    ow_stop
    ow_check "stored during the idle connections" "$f" "$acks" --canonical --expect 2
}

# ---------------------------------------------------------------- fsync_dir

outside_fsync_dir() {
    require_tool strace
    local d="$E2E_DIR/fsync" f="$E2E_DIR/fsync/tasks.json" acks="$E2E_DIR/fsync/acks" out
    mkdir -p "$d"
    strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here (ptrace denied)"
    printf '#!/bin/sh\nexec strace -f -qq -s 4096 -o "%s" -e trace=openat,fsync,fdatasync "%s" "$@"\n' \
        "$d/trace" "$TASKSERVER" >"$E2E_DIR/traced.sh"
    chmod 755 "$E2E_DIR/traced.sh"
    TASKSERVER="$E2E_DIR/traced.sh" start_server "$f" --workers 1 --fsync || return
    local strace_pid=$SERVER_PID master
    master=$(children_of "$strace_pid" | head -1)
    check_eq "POST 1" 201 "$(ow_post "$acks" a 1)"
    # A repair: another layout, rewritten in place, the original saved beside it.
    ow pretty "$f" "$d/stamps" >/dev/null
    check_eq "POST after a pretty rewrite" 201 "$(ow_post "$acks" a 2)"
    check_match "the original was saved" 'tasks\.json\.orig-' "$(ow_saved_copies "$d")"
    # The file removed: created again.
    rm "$f"
    check_eq "POST after rm" 201 "$(ow_post "$acks" b 1)"
    # strace exits with the status of the server it runs.
    kill -TERM "$master"
    if wait_exit "$strace_pid" 15; then
        check_eq "SIGTERM: exit status" 0 "$WAIT_STATUS"
    else
        fail "the server under strace did not exit within 15 s of SIGTERM"
    fi
    SERVER_PID=""
    check_sanitizer_log "$SERVER_LOG"
    if out=$(ow fsync-dir "$d/trace" "$f" 2>&1); then
        pass "--fsync: $out"
    else
        fail "--fsync: $out"
        grep -E 'openat|fsync' "$d/trace" | grep -v '/proc\|\.so' | head -30 | sed 's/^/    /' >&2
    fi
    check_match "three files created (the file, the saved original, the file again)" \
        'after creating: tasks\.json, tasks\.json\.orig-[^,]*, tasks\.json$' "$out"
    # taskctl add --fsync on a missing file.
    local g="$d/ctl/tasks.json"
    mkdir -p "$d/ctl"
    strace -f -qq -s 4096 -o "$d/trace2" -e trace=openat,fsync,fdatasync "$TASKCTL" -f "$g" add --fsync \
        "con fsync" >/dev/null 2>"$d/ctl.err" || fail "taskctl add --fsync: $(cat "$d/ctl.err")"
    if out=$(ow fsync-dir "$d/trace2" "$g" 2>&1); then
        pass "taskctl add --fsync: $out"
    else
        fail "taskctl add --fsync: $out"
    fi
}

case "$CASE" in
echo_reset | rename_editor | rm | hand_line | pretty_in_place | cp_idle | cp_under_load | stale_save | \
    no_file | no_file_probes | two_servers | reset_under_load | outside_lock | strict_json | balance | fsync_dir)
    note "== outside: $CASE (LOCKING=$LOCKING)"
    "outside_$CASE"
    ;;
*)
    echo "usage: $0 echo_reset|rename_editor|rm|hand_line|pretty_in_place|cp_idle|cp_under_load|stale_save|no_file|no_file_probes|two_servers|reset_under_load|outside_lock|strict_json|balance|fsync_dir" >&2
    exit 2
    ;;
esac
e2e_finish
