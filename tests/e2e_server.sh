#!/usr/bin/env bash
# e2e_server.sh - end-to-end tests of taskserver (issue 3 section 6) against the real binary on 127.0.0.1.
#
#     e2e_server.sh api|http|limits|signals|all
#
#   api      the real curl CLI: POST, GET list and one, HEAD, 404, 405, 400s, 411, 413,
#            /health, connection reuse, Expect: 100-continue on a 2 KB body
#   http     raw sockets (raw_http): pipelining, byte-at-a-time, keep-alive and close,
#            chunked, Expect, a table of malformed requests, timeouts, slow, stalled
#            and idle clients
#   limits   every limit through the server: a request exactly at it and one byte past it
#            (request line, header fields, header bytes, body by length and chunked, task
#            fields), from the table of tests/limit_requests.py
#   signals  SIGTERM under load and with a request in flight (new connections
#            refused at once), SIGKILL to a worker, SIGQUIT, a crash loop
#            (throttled), --quiet (only per-task lines silenced, a torn-tail
#            repair still logged), bad options (exit 2), environment versus
#            flags, damaged files
#
# Environment (set by meson test): TASKSERVER, TASKCTL, RAW_HTTP, LOCKING=1|0.
# Nothing here depends on locking: with LOCKING=0 the load of the signal tests
# comes from one client instead of four, so that its requests never race (an
# unlocked build loses tasks under concurrent writers on purpose; that is the
# race demo's business, not this suite's). Set E2E_KEEP=1 to keep the temp dir.

. "$(dirname "$0")/lib.sh"

SECTION=${1:-all}
e2e_init
RAW_HTTP=${RAW_HTTP:-$BUILD_ROOT/tests/raw_http}
[ -x "$RAW_HTTP" ] || skip "raw_http not found at $RAW_HTTP"
if [ "$LOCKING" = 1 ]; then
    LOCKING_JSON=true
    LOAD_CLIENTS=4
else
    LOCKING_JSON=false
    LOAD_CLIENTS=1
fi

# ---------------------------------------------------------------- helpers

# post_task BASE JSON OUT-PREFIX: POST with curl; prints the status; headers in
# OUT-PREFIX.h, body in OUT-PREFIX.b.
post_task() {
    curl -s --max-time 10 -D "$3.h" -o "$3.b" -w '%{http_code}' \
        -H 'Content-Type: application/json' --data-binary "$2" "$1/tareas"
}

# header_value FILE NAME: the value of the last NAME header in a curl -D dump.
header_value() {
    grep -i "^$2:" "$1" | tail -1 | sed 's/^[^:]*:[[:space:]]*//; s/[[:space:]]*$//' | tr -d '\r'
}

# check_std_headers DESC FILE: every response has Date, Server, Content-Type, Content-Length.
check_std_headers() {
    local h missing=""
    for h in Date Server Content-Type Content-Length; do
        grep -qi "^$h:" "$2" || missing="$missing $h"
    done
    if [ -z "$missing" ]; then
        pass "$1: Date, Server, Content-Type, Content-Length present"
    else
        fail "$1: expected headers Date Server Content-Type Content-Length, missing:$missing"
        sed 's/^/    /' "$2" >&2
    fi
}

# check_json_error DESC FILE: the body is a JSON object with a non-empty string "error".
check_json_error() {
    if python3 -c 'import json,sys
d = json.load(open(sys.argv[1], "rb"))
sys.exit(0 if isinstance(d, dict) and isinstance(d.get("error"), str) and d["error"] else 1)' \
        "$2" 2>/dev/null; then
        pass "$1: body is {\"error\": ...}"
    else
        fail "$1: expected a JSON body {\"error\":\"...\"}, got '$(head -c 300 "$2")'"
    fi
}

# check_store FILE ACKDIR [EXPECT-COUNT]: the file is a valid array with ids 1..n
# in order, no cliente+seq stored twice, and every task acknowledged with 201
# (files ACKDIR/ack.CLIENTE, one seq per line) present.
check_store() {
    local out
    if out=$(python3 "$(dirname "${BASH_SOURCE[0]}")/check_store.py" "$1" "$2" "${3:-}" 2>&1); then
        pass "store $1: $out"
    else
        fail "store $1: $out"
    fi
}

# check_taskctl_verify FILE N: taskctl's own verdict on the file.
check_taskctl_verify() {
    if [ -z "$TASKCTL" ] || [ ! -x "$TASKCTL" ]; then
        fail "taskctl verify: TASKCTL is not an executable ('$TASKCTL')"
        return
    fi
    check_cmd "taskctl -f $1 verify --expect $2" "$TASKCTL" -f "$1" verify --expect "$2"
}

# post_loop BASE CLIENTE MAX ACKDIR: POSTs seq 1..MAX, recording each 201 in
# ACKDIR/ack.CLIENTE; stops at the first other answer (so that the stored seqs
# have no gap) or when ACKDIR/stop exists. Bounded: MAX requests of 10 s at most.
post_loop() {
    local base=$1 c=$2 max=$3 dir=$4 s code
    : >"$dir/ack.$c"
    for s in $(seq 1 "$max"); do
        [ -e "$dir/stop" ] && break
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
            -H 'Content-Type: application/json' \
            --data-binary "{\"titulo\":\"carga $c $s\",\"cliente\":\"$c\",\"seq\":$s}" \
            "$base/tareas")
        if [ "$code" != 201 ]; then
            echo "seq $s: status $code" >"$dir/end.$c"
            break
        fi
        echo "$s" >>"$dir/ack.$c"
    done
}

# start_load BASE DIR N MAX: N post_loops in the background; pids in LOAD_PIDS.
start_load() {
    local i
    LOAD_PIDS=""
    mkdir -p "$2"
    for i in $(seq 1 "$3"); do
        post_loop "$1" "c$i" "$4" "$2" &
        LOAD_PIDS="$LOAD_PIDS $!"
        track_pid $!
    done
}

# stop_load DIR: asks the loops to stop and waits for them (bounded).
stop_load() {
    local p
    touch "$1/stop"
    for p in $LOAD_PIDS; do
        wait_exit "$p" 30 || fail "load loop $p did not stop within 30 s"
    done
}

# num_children_is PID N: succeeds if PID has N children (for wait_until).
num_children_is() {
    [ "$(children_of "$1" | wc -l)" -eq "$2" ]
}

# acked_count DIR: how many 201s the loops got.
acked_count() {
    cat "$1"/ack.* 2>/dev/null | grep -c .
}

# health_says_workers BASE N: GET /health reports N workers (for wait_until).
health_says_workers() {
    curl -s --max-time 2 "$1/health" | grep -Eq "\"workers\": *$2[,}]"
}

# acked_at_least DIR N: succeeds once the loops got N 201s (for wait_until).
acked_at_least() {
    [ "$(acked_count "$1")" -ge "$2" ]
}

# raw DESC ARGS...: raw_http on the current PORT; a check.
raw() {
    local desc=$1 out rc
    shift
    out=$("$RAW_HTTP" -q -p "$PORT" "$@" 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then
        pass "raw: $desc"
    else
        fail "raw: $desc (raw_http exit $rc)"
        printf '%s\n' "$out" | head -20 | sed 's/^/    /' >&2
    fi
}

# run_refusing FILE: starts taskserver on FILE, which must refuse to start;
# RUN_RC gets its exit status ("timeout" if it was still running after 5 s,
# and then it and its workers are killed), RUN_OUT its stderr.
run_refusing() {
    local log="$E2E_DIR/refusing.log" pid c
    "$TASKSERVER" --port 0 --bind 127.0.0.1 --workers 2 --file "$1" >"$log" 2>&1 &
    pid=$!
    track_pid "$pid"
    if wait_exit "$pid" 5; then
        RUN_RC=$WAIT_STATUS
    else
        RUN_RC=timeout
        for c in $(children_of "$pid"); do
            kill -KILL "$c" 2>/dev/null
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    RUN_OUT=$(cat "$log")
    check_sanitizer_log "$log"
}

# ---------------------------------------------------------------- api: curl

section_api() {
    note "== api: the real curl client"
    local d="$E2E_DIR/api" f code body base n
    mkdir -p "$d"
    f="$d/tasks.json"
    start_server "$f" || return
    base="http://127.0.0.1:$PORT"

    code=$(curl -s --max-time 10 -D "$d/h0" -o "$d/b0" -w '%{http_code}' "$base/health")
    check_eq "GET /health status" 200 "$code"
    check_std_headers "GET /health" "$d/h0"
    check_match "GET /health Content-Type" '^application/json' "$(header_value "$d/h0" Content-Type)"
    body=$(cat "$d/b0")
    check_match "GET /health status ok" '"status": *"ok"' "$body"
    check_match "GET /health workers 4" '"workers": *4[,}]' "$body"
    check_match "GET /health locking $LOCKING_JSON" "\"locking\": *${LOCKING_JSON}[,}]" "$body"
    check_match "GET /health tasks 0 on a new file" '"tasks": *0[,}]' "$body"

    # POST: 201, the stored record, Location.
    code=$(post_task "$base" '{"titulo":"primera","cliente":"api","seq":1}' "$d/p1")
    check_eq "POST /tareas status" 201 "$code"
    check_std_headers "POST /tareas" "$d/p1.h"
    check_eq "POST /tareas Location" /tareas/1 "$(header_value "$d/p1.h" Location)"
    check_match "POST /tareas Content-Type" '^application/json' \
        "$(header_value "$d/p1.h" Content-Type)"
    body=$(cat "$d/p1.b")
    check_match "POST /tareas body id 1" '^\{"id": *1,' "$body"
    check_match "POST /tareas body titulo" '"titulo": *"primera"' "$body"
    check_match "POST /tareas body cliente and seq" '"cliente": *"api", *"seq": *1[,}]' "$body"

    code=$(post_task "$base" \
        '{"titulo":"segunda \u00f1 \"citada\"","descripcion":"d","cliente":"api","seq":2}' "$d/p2")
    check_eq "POST /tareas second status" 201 "$code"
    check_eq "POST /tareas second Location" /tareas/2 "$(header_value "$d/p2.h" Location)"

    # GET list: exactly the file (nothing in flight), one record per line.
    code=$(curl -s --max-time 10 -D "$d/l.h" -o "$d/l.b" -w '%{http_code}' "$base/tareas")
    check_eq "GET /tareas status" 200 "$code"
    check_std_headers "GET /tareas" "$d/l.h"
    check_match "GET /tareas Content-Type" '^application/json' "$(header_value "$d/l.h" Content-Type)"
    if cmp -s "$d/l.b" "$f"; then
        pass "GET /tareas body equals $f"
    else
        fail "GET /tareas: expected the body to equal $f, got '$(head -c 400 "$d/l.b")'"
    fi
    n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$d/l.b" 2>&1)
    check_eq "GET /tareas array length" 2 "$n"
    check_eq "GET /tareas Content-Length" "$(wc -c <"$d/l.b" | tr -d ' ')" \
        "$(header_value "$d/l.h" Content-Length)"

    # GET one: the record the POST returned.
    code=$(curl -s --max-time 10 -D "$d/g1.h" -o "$d/g1.b" -w '%{http_code}' "$base/tareas/1")
    check_eq "GET /tareas/1 status" 200 "$code"
    check_std_headers "GET /tareas/1" "$d/g1.h"
    check_eq "GET /tareas/1 body equals the POST's body" "$(cat "$d/p1.b")" "$(cat "$d/g1.b")"
    code=$(curl -s --max-time 10 -o "$d/g2.b" -w '%{http_code}' "$base/tareas/2")
    check_eq "GET /tareas/2 status" 200 "$code"
    check_eq "GET /tareas/2 body equals the POST's body" "$(cat "$d/p2.b")" "$(cat "$d/g2.b")"
    check_match "GET /tareas/2 keeps the escaped titulo" '"titulo": *"segunda (ñ|\\u00f1) \\"citada\\""' \
        "$(cat "$d/g2.b")"
    code=$(curl -s --max-time 10 -D "$d/g3.h" -o "$d/g3.b" -w '%{http_code}' "$base/tareas/3")
    check_eq "GET /tareas/3 (absent) status" 404 "$code"
    check_std_headers "GET /tareas/3" "$d/g3.h"
    check_json_error "GET /tareas/3" "$d/g3.b"

    # HEAD: GET's headers, no body.
    code=$(curl -s --max-time 10 -I -D "$d/hd.h" -o /dev/null -w '%{http_code} %{size_download}' \
        "$base/tareas")
    check_eq "HEAD /tareas status and body size" "200 0" "$code"
    check_std_headers "HEAD /tareas" "$d/hd.h"
    check_eq "HEAD /tareas Content-Length equals GET's" "$(header_value "$d/l.h" Content-Length)" \
        "$(header_value "$d/hd.h" Content-Length)"

    # 404 and 405.
    code=$(curl -s --max-time 10 -D "$d/nf.h" -o "$d/nf.b" -w '%{http_code}' "$base/nope")
    check_eq "GET /nope status" 404 "$code"
    check_std_headers "GET /nope" "$d/nf.h"
    code=$(curl -s --max-time 10 -X DELETE -D "$d/m1.h" -o /dev/null -w '%{http_code}' \
        "$base/tareas")
    check_eq "DELETE /tareas status" 405 "$code"
    check_std_headers "DELETE /tareas" "$d/m1.h"
    check_match "DELETE /tareas Allow lists GET and POST" 'GET.*POST|POST.*GET' \
        "$(header_value "$d/m1.h" Allow)"
    code=$(curl -s --max-time 10 -X PUT --data-binary x -D "$d/m2.h" -o /dev/null \
        -w '%{http_code}' "$base/health")
    check_eq "PUT /health status" 405 "$code"
    check_match "PUT /health Allow lists GET" 'GET' "$(header_value "$d/m2.h" Allow)"

    # 400 for each kind of bad task, with {"error": ...}.
    local i=0 bad
    while IFS= read -r bad; do
        i=$((i + 1))
        code=$(printf '%b' "$bad" | curl -s --max-time 10 -D "$d/e$i.h" -o "$d/e$i.b" \
            -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @- "$base/tareas")
        check_eq "POST bad task '$bad' status" 400 "$code"
        check_json_error "POST bad task '$bad'" "$d/e$i.b"
    done <<'EOF'
{"titulo":
not json
{"cliente":"x","seq":1}
{"titulo":""}
{"titulo":"x","prioridad":1}
{"titulo":5}
{"titulo":"x","seq":"1"}
{"titulo":"\xff\xfe"}
[{"titulo":"x"}]
{"titulo":"x"} trailing
EOF

    # 411: curl sends a POST without Content-Length or Transfer-Encoding.
    code=$(curl -s --max-time 10 -X POST -o "$d/411.b" -w '%{http_code}' "$base/tareas")
    check_eq "POST without length status" 411 "$code"

    # 413: a 100 KB body, without and with Expect (then the 413 replaces the 100).
    python3 -c 'import sys; sys.stdout.write("{\"titulo\":\"" + "x" * 100000 + "\"}")' >"$d/big.json"
    code=$(curl -s --max-time 10 -H 'Expect:' -D "$d/413.h" -o "$d/413.b" -w '%{http_code}' \
        -H 'Content-Type: application/json' --data-binary @"$d/big.json" "$base/tareas")
    check_eq "POST 100 KB body status" 413 "$code"
    check_std_headers "POST 100 KB body" "$d/413.h"
    code=$(curl -sv --max-time 10 -H 'Expect: 100-continue' -o "$d/413e.b" -w '%{http_code}' \
        -H 'Content-Type: application/json' --data-binary @"$d/big.json" "$base/tareas" \
        2>"$d/413e.err")
    check_eq "POST 100 KB body with Expect status" 413 "$code"
    if grep -q '^< HTTP/1.1 100' "$d/413e.err"; then
        fail "POST 100 KB body with Expect: expected no 100 Continue before the 413, got one"
    else
        pass "POST 100 KB body with Expect: no 100 Continue"
    fi

    # Connection reuse: two URLs in one curl invocation.
    curl -sv --max-time 10 -o /dev/null -o /dev/null "$base/health" "$base/tareas/1" \
        2>"$d/reuse.err"
    if grep -qi 're-using existing connection' "$d/reuse.err"; then
        pass "curl reuses the connection for a second URL"
    else
        fail "connection reuse: expected 'Re-using existing connection' in curl -v, got:"
        grep -E '^[*<] ' "$d/reuse.err" | head -20 | sed 's/^/    /' >&2
    fi

    # Expect: 100-continue on a 2 KB body.
    python3 -c 'import sys; sys.stdout.write("{\"titulo\":\"expect\",\"descripcion\":\"" + "d" * 2000 + "\",\"cliente\":\"api\",\"seq\":3}")' >"$d/2k.json"
    code=$(curl -sv --max-time 10 -H 'Expect: 100-continue' -o "$d/exp.b" -w '%{http_code}' \
        -H 'Content-Type: application/json' --data-binary @"$d/2k.json" "$base/tareas" \
        2>"$d/exp.err")
    check_eq "POST 2 KB body with Expect: 100-continue status" 201 "$code"
    if grep -q '^< HTTP/1.1 100 Continue' "$d/exp.err"; then
        pass "POST 2 KB body: 100 Continue received first"
    else
        fail "POST 2 KB body with Expect: expected '< HTTP/1.1 100 Continue' in curl -v, got:"
        grep -E '^[<>] ' "$d/exp.err" | head -20 | sed 's/^/    /' >&2
    fi
    check_eq "POST 2 KB body Location" /tareas/3 \
        "$(grep -i '^< location:' "$d/exp.err" | sed 's/^< [^:]*: *//' | tr -d '\r' | head -1)"

    # HTTP/1.0 from curl.
    code=$(http_status --http1.0 "$base/health")
    check_eq "GET /health over HTTP/1.0 status" 200 "$code"

    code=$(curl -s --max-time 10 "$base/health")
    check_match "GET /health counts 3 tasks" '"tasks": *3[,}]' "$code"

    # One log line per stored task: 'worker PID: stored task ID "titulo" from
    # CLIENTE', PID a worker; the titulo is a JSON string (quotes, backslashes and
    # control characters escaped: one line, unambiguous), the cliente its inside,
    # a task without cliente "-".
    local log_line wpid
    log_line=$(grep 'stored task 1 ' "$SERVER_LOG")
    check_match "per-task log line format" \
        '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z taskserver\[[0-9]+\]: worker [0-9]+: stored task 1 "primera" from api$' \
        "$log_line"
    wpid=$(printf '%s\n' "$log_line" | sed -n 's/.*: worker \([0-9]*\): stored.*/\1/p')
    check_eq "per-task log line: PID $wpid is a worker of the master" yes \
        "$(children_of "$SERVER_PID" | grep -qx "$wpid" && echo yes || echo "no (workers: $(children_of "$SERVER_PID" | tr '\n' ' '))")"
    check_match "per-task log line: quotes escaped" \
        ': stored task 2 "segunda ñ \\"citada\\"" from api$' "$(cat "$SERVER_LOG")"
    check_eq "one per-task log line per stored task" 3 "$(grep -c 'stored task' "$SERVER_LOG")"
    code=$(post_task "$base" '{"titulo":"sin cliente"}' "$d/p4")
    check_eq "POST without cliente status" 201 "$code"
    if wait_until 3 grep -q 'stored task 4 "sin cliente" from -$' "$SERVER_LOG"; then
        pass "per-task log line without cliente: 'from -'"
    else
        fail "per-task log line without cliente: expected 'stored task 4 \"sin cliente\" from -', got: $(grep 'stored task 4' "$SERVER_LOG")"
    fi
    code=$(post_task "$base" '{"titulo":"dos\nlineas \\ y \"","cliente":"c\"q\t"}' "$d/p5")
    check_eq "POST with a newline in titulo status" 201 "$code"
    if wait_until 3 grep -q 'stored task 5 ' "$SERVER_LOG"; then
        check_eq "per-task log line: newline, backslash and quotes escaped" \
            'stored task 5 "dos\nlineas \\ y \"" from c\"q\t' \
            "$(grep -o 'stored task 5 .*' "$SERVER_LOG")"
    else
        fail "no per-task log line for task 5: $(tail -3 "$SERVER_LOG")"
    fi
    # Over 200 bytes: cut before the 2-byte "ñ" that would cross byte 200, then "...".
    local a199
    a199=$(printf 'a%.0s' $(seq 1 199))
    code=$(post_task "$base" "{\"titulo\":\"${a199}\u00f1b\"}" "$d/p6")
    check_eq "POST with a 202-byte titulo status" 201 "$code"
    if wait_until 3 grep -q 'stored task 6 ' "$SERVER_LOG"; then
        check_eq "per-task log line: a long titulo cut at a character boundary" \
            "stored task 6 \"$a199\"... from -" "$(grep -o 'stored task 6 .*' "$SERVER_LOG")"
    else
        fail "no per-task log line for task 6: $(tail -3 "$SERVER_LOG")"
    fi

    stop_server TERM 15
    check_eq "SIGTERM on an idle server: exit status" 0 "$SERVER_STATUS"
    check_store "$f" "$d" 6
    check_taskctl_verify "$f" 6
}

# ---------------------------------------------------------------- http: raw sockets

# One request per line: "EXPECTED<TAB>CLOSE<TAB>REQUEST" (escapes as raw_http),
# CLOSE "close" when the server must close after answering. The bodies with
# control bytes outside strings are invalid JSON (RFC 8259 whitespace is only
# space, tab, CR, LF), which a lenient JSON parser may take for whitespace.
malformed_table() {
    local long_target long_header many_headers i
    long_target=$(printf '/%09000d' 0)
    long_header="X-Big: $(printf '%017000d' 0)"
    many_headers=""
    for i in $(seq 1 101); do many_headers="${many_headers}X-H$i: v\\r\\n"; done
    cat <<EOF
400	-	GET /health HTTP/1.1\r\n\r\n
400	-	GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n
505	-	GET /health HTTP/2.0\r\nHost: a\r\n\r\n
200	-	GET /health HTTP/1.2\r\nHost: a\r\n\r\n
200	-	GET http://a/health HTTP/1.1\r\nHost: a\r\n\r\n
400	-	GET /health FOO/1.1\r\nHost: a\r\n\r\n
400	-	GET /health HTTP/1.1 x\r\nHost: a\r\n\r\n
400	-	GET health HTTP/1.1\r\nHost: a\r\n\r\n
400	-	G(T /health HTTP/1.1\r\nHost: a\r\n\r\n
400	-	\x01\x02\x03\r\n\r\n
400	-	\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x8a\x4f
400	-	GET /health HTTP/1.1\r\nHost: a\r\n\r\r\n
400	-	{"titulo":"x"}
400	-	GET /health HTTP/1.1\r\nHost: a b\r\n\r\n
400	-	POST /tareas HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n
400	-	GET /health HTTP/1.1\r\nHost : a\r\n\r\n
400	-	GET /health HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n
400	-	GET /health HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n
400	-	GET /health HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n
400	-	GET /health HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n
400	-	GET /health HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n
400	close	POST /tareas HTTP/1.1\r\nHost: a\r\nContent-Length: 14\r\nTransfer-Encoding: chunked\r\n\r\ne\r\n{"titulo":"x"}\r\n0\r\n\r\n
501	-	POST /tareas HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n
400	-	POST /tareas HTTP/1.1\r\nHost: a\r\nContent-Length: 14a\r\n\r\n{"titulo":"x"}
400	-	POST /tareas HTTP/1.1\r\nHost: a\r\nContent-Length: +14\r\n\r\n{"titulo":"x"}
400	-	POST /tareas HTTP/1.1\r\nHost: a\r\nContent-Length: 14\r\nContent-Length: 15\r\n\r\n{"titulo":"x"}
201	-	POST /tareas HTTP/1.1\r\nHost: a\r\nContent-Length: 14\r\nContent-Length: 14\r\n\r\n{"titulo":"x"}
411	-	POST /tareas HTTP/1.1\r\nHost: a\r\n\r\n
400	-	POST /tareas HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{"titulo":"x"}\r\n0\r\n\r\n
400	-	POST /tareas HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n{"tit
400	-	POST /tareas HTTP/1.1\r\nHost: a\r\nContent-Length: 15\r\n\r\n\x01{"titulo":"x"}
400	-	POST /tareas HTTP/1.1\r\nHost: a\r\nContent-Length: 23\r\n\r\n{"titulo":"x",\x0b"seq":1}
413	close	POST /tareas HTTP/1.1\r\nHost: a\r\nContent-Length: 70000\r\n\r\n
414	-	GET $long_target HTTP/1.1\r\nHost: a\r\n\r\n
431	-	GET /health HTTP/1.1\r\nHost: a\r\n$long_header\r\n\r\n
431	-	GET /health HTTP/1.1\r\nHost: a\r\n$many_headers\r\n
EOF
}

section_http() {
    note "== http: raw sockets"
    local d="$E2E_DIR/http" f base t0 t1 code out
    mkdir -p "$d"
    f="$d/tasks.json"
    start_server "$f" || return
    base="http://127.0.0.1:$PORT"
    local H='Host: e2e\r\n'
    local POST1='POST /tareas HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{"titulo":"x"}'
    local GETH="GET /health HTTP/1.1\\r\\n$H\\r\\n"

    raw "GET /health: 200 with the standard headers" "send:$GETH" status:200 std-headers \
        'body:"status"'
    raw "pipelining: 3 requests in one write, answered in order" \
        "send:GET /tareas/999999 HTTP/1.1\\r\\n$H\\r\\n${GETH}$POST1" \
        status:404 status:200 'body:"status"' status:201 'body:"titulo"' std-headers open:300
    raw "pipelining: the same 3 requests byte by byte" \
        "drip:GET /tareas/999999 HTTP/1.1\\r\\n$H\\r\\n${GETH}$POST1" \
        status:404 status:200 status:201 'body:"titulo"' open:300
    raw "byte-at-a-time POST" "drip:$POST1" status:201 'header:Location:/tareas/' open:200
    raw "byte-at-a-time GET" "drip:$GETH" status:200 'body:"status"'
    raw "keep-alive: two requests with a pause on one connection" \
        "send:$GETH" status:200 sleep:500 "send:$GETH" status:200 open:300
    # Close waits: an immediate close gets 1.5 s, well under the 5 s keep-alive
    # timeout, so a connection wrongly kept open cannot pass by timing out idle.
    # A close after an early answer (the request not read to its end) comes
    # when the client closes or after the server's 2 s linger (CONN_LINGER_MS):
    # 3.5 s, still under the keep-alive timeout.
    raw "Connection: close: answered, then closed" \
        "send:GET /health HTTP/1.1\\r\\n${H}Connection: close\\r\\n\\r\\n" status:200 \
        header:Connection:close close:1500
    raw "HTTP/1.0: answered, then closed" "send:GET /health HTTP/1.0\\r\\n\\r\\n" status:200 \
        header:Connection:close close:1500
    raw "HTTP/1.0 with Connection: keep-alive stays open" \
        "send:GET /health HTTP/1.0\\r\\nConnection: keep-alive\\r\\n\\r\\n" status:200 open:300 \
        "send:GET /health HTTP/1.0\\r\\nConnection: keep-alive\\r\\n\\r\\n" status:200
    raw "HEAD: headers only, the connection stays usable" \
        "send:HEAD /tareas HTTP/1.1\\r\\n$H\\r\\n" status:200:head header:Content-Length \
        header:Content-Type:application/json "send:$GETH" status:200 'body:"status"'
    # RFC 9110 9.3.2: no body in any response to HEAD, errors included; a body
    # would be read as the start of the next response.
    raw "HEAD answered 417: headers only, then the pipelined GET" \
        "send:HEAD /health HTTP/1.1\\r\\nHost: a\\r\\nExpect: x\\r\\n\\r\\nGET /health HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n" \
        status:417:head header:Content-Length:67 status:200 'body:"status":"ok"' open:300
    raw "HEAD answered 400: headers only, then closed" \
        "send:HEAD /health HTTP/1.1\\r\\nHost: a b\\r\\n\\r\\n" status:400:head \
        header:Connection:close close:3500
    raw "chunked POST" \
        "send:POST /tareas HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\n\\r\\n6\\r\\n{\"titu\\r\\n8\\r\\nlo\":\"ch\"\\r\\n1\\r\\n}\\r\\n0\\r\\n\\r\\n" \
        status:201 'body:"titulo":"ch"'
    raw "chunked POST with an extension and a trailer" \
        "send:POST /tareas HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\n\\r\\ne;ext=1\\r\\n{\"titulo\":\"t\"}\\r\\n0\\r\\nX-Trailer: v\\r\\n\\r\\n" \
        status:201 'body:"titulo":"t"' "send:$GETH" status:200
    raw "Expect: 100-continue: 100 before the body, then 201" \
        "send:POST /tareas HTTP/1.1\\r\\n${H}Expect: 100-continue\\r\\nContent-Length: 14\\r\\n\\r\\n" \
        status:100 'send:{"titulo":"x"}' status:201
    raw "Expect: 100-continue on a body too large: 413 instead of 100" \
        "send:POST /tareas HTTP/1.1\\r\\n${H}Expect: 100-continue\\r\\nContent-Length: 70000\\r\\n\\r\\n" \
        status:413 std-headers header:Connection:close
    python3 -c 'import sys; sys.stdout.write("POST /tareas HTTP/1.1\r\nHost: e2e\r\nContent-Length: 100012\r\n\r\n{\"titulo\":\"" + "x" * 100000 + "\"}")' >"$d/big.req"
    raw "413 on a 100 KB body sent whole: readable, then closed" "file:$d/big.req" status:413 \
        std-headers header:Connection:close close:3500

    # The table of malformed requests, each sent whole and byte by byte.
    local want closing req mode close_action row=0 label
    while IFS="$(printf '\t')" read -r want closing req; do
        [ -n "$want" ] || continue
        row=$((row + 1))
        close_action=""
        [ "$closing" = close ] && close_action="header:Connection:close close:3500"
        label=$req
        [ ${#req} -le 100 ] || label="${req:0:45}...${req: -45}"
        for mode in send drip; do
            # shellcheck disable=SC2086 # close_action is zero or two words
            raw "malformed #$row ($mode) -> $want: $label" -t 5000 "$mode:$req" \
                "status:$want" $close_action
        done
    done < <(malformed_table)

    # Slow clients: stalled connections (half a header section, half a body)
    # must not delay other clients. 16 of each, so every worker likely has some.
    # The checks start once the server has accepted all 32 (not after a guessed sleep).
    local conns0
    conns0=$(server_conns)
    "$RAW_HTTP" hold -p "$PORT" -n 16 -d 5000 -s 'POST /tareas HTTP/1.1\r\nHost: e2e\r\nCont' \
        >"$d/stall1.out" 2>"$d/stall1.err" &
    local h1=$!
    track_pid $h1
    "$RAW_HTTP" hold -p "$PORT" -n 16 -d 5000 \
        -s 'POST /tareas HTTP/1.1\r\nHost: e2e\r\nContent-Length: 100\r\n\r\n{"tit' \
        >"$d/stall2.out" 2>"$d/stall2.err" &
    local h2=$!
    track_pid $h2
    wait_held "16 stalled half headers" "$d/stall1.err" "$conns0" 0
    wait_held "32 stalled connections" "$d/stall2.err" "$conns0" 32
    t0=$(now_ms)
    code=$(post_task "$base" '{"titulo":"durante el bloqueo"}' "$d/slow")
    t1=$(now_ms)
    check_eq "POST during 32 stalled connections: status" 201 "$code"
    check_eq "POST during 32 stalled connections: done within 2000 ms" yes \
        "$([ $((t1 - t0)) -lt 2000 ] && echo yes || echo "no ($((t1 - t0)) ms)")"
    t0=$(now_ms)
    code=$(http_status "$base/tareas")
    t1=$(now_ms)
    check_eq "GET /tareas during 32 stalled connections: status" 200 "$code"
    check_eq "GET /tareas during 32 stalled connections: done within 2000 ms" yes \
        "$([ $((t1 - t0)) -lt 2000 ] && echo yes || echo "no ($((t1 - t0)) ms)")"
    wait_exit $h1 20 || fail "raw_http hold did not end within 20 s"
    wait_exit $h2 20 || fail "raw_http hold did not end within 20 s"
    # 5 s is under the 10 s header and body timeouts: nobody was cut off.
    check_eq "stalled half headers: all kept open for 5 s" \
        "connected=16 failed=0 closed=0 answered=0 statuses= close_ms=" "$(cat "$d/stall1.out")"
    check_eq "stalled half body: all kept open for 5 s" \
        "connected=16 failed=0 closed=0 answered=0 statuses= close_ms=" "$(cat "$d/stall2.out")"

    # Many idle connections: still serving.
    conns0=$(server_conns)
    "$RAW_HTTP" hold -p "$PORT" -n 400 -d 3000 >"$d/idle.out" 2>"$d/idle.err" &
    local h3=$!
    track_pid $h3
    wait_held "400 idle connections" "$d/idle.err" "$conns0" 400
    t0=$(now_ms)
    code=$(http_status "$base/health")
    t1=$(now_ms)
    check_eq "GET /health during 400 idle connections: status" 200 "$code"
    check_eq "GET /health during 400 idle connections: done within 2000 ms" yes \
        "$([ $((t1 - t0)) -lt 2000 ] && echo yes || echo "no ($((t1 - t0)) ms)")"
    wait_exit $h3 20 || fail "raw_http hold (idle) did not end within 20 s"
    check_match "400 idle connections all connected" '^connected=400 failed=0 ' "$(cat "$d/idle.out")"

    code=$(http_status "$base/health")
    check_eq "GET /health after the raw tests: status" 200 "$code"
    stop_server TERM 15
    check_eq "SIGTERM after the raw tests: exit status" 0 "$SERVER_STATUS"
    check_store "$f" "$d"

    # One worker: a stalled client in the same worker must not block it.
    start_server "$d/one.json" --workers 1 || return
    base="http://127.0.0.1:$PORT"
    conns0=$(server_conns)
    "$RAW_HTTP" hold -p "$PORT" -n 4 -d 5000 -s 'GET /health HTTP/1.1\r\nHo' \
        >"$d/stall3.out" 2>"$d/stall3.err" &
    local h4=$!
    track_pid $h4
    wait_held "1 worker, 4 stalled connections" "$d/stall3.err" "$conns0" 4
    t0=$(now_ms)
    code=$(post_task "$base" '{"titulo":"un solo worker"}' "$d/one")
    t1=$(now_ms)
    check_eq "1 worker, 4 stalled connections: POST status" 201 "$code"
    check_eq "1 worker, 4 stalled connections: POST done within 2000 ms" yes \
        "$([ $((t1 - t0)) -lt 2000 ] && echo yes || echo "no ($((t1 - t0)) ms)")"
    wait_exit $h4 20 || fail "raw_http hold did not end within 20 s"
    check_eq "1 worker: the 4 stalled connections were held open throughout" \
        "connected=4 failed=0 closed=0 answered=0 statuses= close_ms=" "$(cat "$d/stall3.out")"
    stop_server TERM 15
    check_eq "1 worker: SIGTERM exit status" 0 "$SERVER_STATUS"

    # Timeouts: header 2 s -> 408, then close; idle keep-alive 1 s -> close (no answer:
    # there is no request to answer).
    start_server "$d/timeouts.json" --header-timeout 2 --keepalive-timeout 1 || return
    base="http://127.0.0.1:$PORT"
    t0=$(now_ms)
    raw "header timeout: a half-sent request gets 408, then the connection is closed" -t 6000 \
        'send:GET /health HTTP/1.1\r\nHost: e2e\r\n' status:408 std-headers \
        header:Connection:close 'body:"error"' close
    t1=$(now_ms)
    check_eq "header timeout 2 s: closed after 1.5 to 6 s" yes \
        "$([ $((t1 - t0)) -ge 1500 ] && [ $((t1 - t0)) -lt 6000 ] && echo yes ||
            echo "no ($((t1 - t0)) ms)")"
    t0=$(now_ms)
    raw "keep-alive timeout: an idle connection is closed" -t 5000 "send:$GETH" status:200 close
    t1=$(now_ms)
    check_eq "keep-alive timeout 1 s: closed within 0.5 to 5 s" yes \
        "$([ $((t1 - t0)) -ge 500 ] && [ $((t1 - t0)) -lt 5000 ] && echo yes ||
            echo "no ($((t1 - t0)) ms)")"
    # Slowloris: one header byte per second on 20 connections, all cut at the
    # header timeout with a 408, while a normal client is served.
    conns0=$(server_conns)
    "$RAW_HTTP" hold -p "$PORT" -n 20 -d 6000 -i 1000 \
        -s 'GET /health HTTP/1.1\r\nHost: e2e\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n' \
        >"$d/loris.out" 2>"$d/loris.err" &
    local h5=$!
    track_pid $h5
    wait_held "20 slowloris connections" "$d/loris.err" "$conns0" 20
    code=$(http_status --max-time 2 "$base/health")
    check_eq "GET /health during 20 slowloris connections: status within 2 s" 200 "$code"
    wait_exit $h5 20 || fail "raw_http hold (slowloris) did not end within 20 s"
    out=$(cat "$d/loris.out")
    check_match "slowloris: all 20 answered 408 and closed" \
        '^connected=20 failed=0 closed=20 answered=20 statuses=408:20 close_ms=' "$out"
    # Timed by raw_http on each socket: its first byte to the server's close.
    local cms lo hi
    cms=$(printf '%s\n' "$out" | sed -n 's/.* close_ms=\([0-9]*\)\.\.\([0-9]*\)$/\1 \2/p')
    read -r lo hi <<<"$cms"
    check_eq "slowloris: each closed 1.9 to 4.5 s after its first byte (--header-timeout 2)" yes \
        "$([ -n "$lo" ] && [ "$lo" -ge 1900 ] && [ "$hi" -le 4500 ] && echo yes || echo "no (close_ms=$cms)")"
    stop_server TERM 15
    check_eq "timeouts server: SIGTERM exit status" 0 "$SERVER_STATUS"
}

# ---------------------------------------------------------------- limits

# Every limit through the public server (README, Limits): one request exactly at it
# (accepted) and one a byte past it (the documented status), from the table that
# tests/limit_requests.py writes. Small limits by flag keep the requests small; the task
# fields' limits are fixed (task_json.h).
section_limits() {
    note "== limits: at and one past every limit"
    local d="$E2E_DIR/limits" f base table file want sub desc accepted=0 n
    local max_rl=64 max_hb=512 max_h=8 max_body=5000
    mkdir -p "$d/req"
    f="$d/tasks.json"
    if ! table=$(python3 "$(dirname "${BASH_SOURCE[0]}")/limit_requests.py" "$d/req" \
        "$max_rl" "$max_hb" "$max_h" "$max_body" 2>&1); then
        fail "limit_requests.py: $table"
        return
    fi
    start_server "$f" --max-request-line "$max_rl" --max-header-bytes "$max_hb" \
        --max-headers "$max_h" --max-body "$max_body" || return
    base="http://127.0.0.1:$PORT"
    while IFS="$(printf '\t')" read -r file want sub desc; do
        [ -n "$file" ] || continue
        raw "limit: $desc -> $want" -t 5000 "file:$d/req/$file" "status:$want" "body:$sub"
        [ "$want" = 201 ] && accepted=$((accepted + 1))
    done <<<"$table"
    check_eq "limit table: 26 requests" 26 "$(printf '%s\n' "$table" | grep -c .)"
    stop_server TERM 15
    check_eq "limits server: SIGTERM exit status" 0 "$SERVER_STATUS"
    # Each accepted POST stored once, the refused ones not at all.
    n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$f" 2>&1)
    check_eq "limits: the $accepted accepted POSTs stored, nothing else" "$accepted" "$n"
    check_match "limits: taskctl check $f" "canonical" "$("$TASKCTL" -f "$f" check 2>&1)"
}

# ---------------------------------------------------------------- signals

section_signals() {
    note "== signals: SIGTERM under load and in flight, SIGKILL to a worker, SIGQUIT, a crash loop, --quiet, options, damaged files"
    local d="$E2E_DIR/sig" f base n code workers victim after i new

    # SIGTERM under load: graceful, exit 0, every acknowledged task stored.
    mkdir -p "$d/term"
    f="$d/term/tasks.json"
    start_server "$f" --grace 5 --quiet || return
    base="http://127.0.0.1:$PORT"
    start_load "$base" "$d/term" "$LOAD_CLIENTS" 2000
    wait_until 20 acked_at_least "$d/term" 20 ||
        fail "SIGTERM under load: fewer than 20 tasks acknowledged within 20 s"
    n=$(acked_count "$d/term")
    note "SIGTERM after $n acknowledged tasks"
    local term_port=$PORT t0 t1
    t0=$(now_ms)
    stop_server TERM 12
    t1=$(now_ms)
    check_eq "SIGTERM under load: exit status" 0 "$SERVER_STATUS"
    check_eq "SIGTERM under load: stopped within --grace 5 s (+1 s)" yes \
        "$([ $((t1 - t0)) -le 6000 ] && echo yes || echo "no ($((t1 - t0)) ms)")"
    stop_load "$d/term"
    n=$(acked_count "$d/term")
    check_eq "SIGTERM under load: the load was real (at least 20 acknowledged)" yes \
        "$([ "$n" -ge 20 ] && echo yes || echo "no ($n)")"
    code=$(http_status --max-time 2 "http://127.0.0.1:$term_port/health")
    check_eq "after SIGTERM: no new connection accepted" 000 "$code"
    check_store "$f" "$d/term"
    check_taskctl_verify "$f" "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$f" 2>/dev/null)"

    # SIGKILL to a worker: logged, replaced, still answering, nothing lost.
    mkdir -p "$d/kill"
    f="$d/kill/tasks.json"
    start_server "$f" --grace 5 --quiet || return
    base="http://127.0.0.1:$PORT"
    workers=$(children_of "$SERVER_PID" | sort | tr '\n' ' ')
    check_eq "4 workers are children of the master" 4 "$(echo "$workers" | wc -w)"
    start_load "$base" "$d/kill" "$LOAD_CLIENTS" 2000
    wait_until 20 acked_at_least "$d/kill" 10 ||
        fail "SIGKILL under load: fewer than 10 tasks acknowledged within 20 s"
    victim=$(echo "$workers" | awk '{print $1}')
    if [ -n "$victim" ]; then
        kill -KILL "$victim"
        note "SIGKILL to worker $victim"
        new=""
        for i in $(seq 1 50); do
            after=$(children_of "$SERVER_PID" | sort | tr '\n' ' ')
            if [ "$(echo "$after" | wc -w)" -eq 4 ] && ! echo " $after " | grep -q " $victim "; then
                new=$after
                break
            fi
            sleep 0.1
        done
        if [ -n "$new" ]; then
            pass "killed worker $victim replaced within 5 s (workers now: $new)"
        else
            fail "SIGKILL to worker $victim: expected 4 workers without it within 5 s, got: $after"
        fi
        if wait_until 3 grep -qw "$victim" "$SERVER_LOG"; then
            pass "the master logged the death of worker $victim"
        else
            fail "SIGKILL to worker $victim: expected a log line naming pid $victim, got:"
            tail -5 "$SERVER_LOG" | sed 's/^/    /' >&2
        fi
    fi
    # The load goes on across the kill: 10 more acknowledged after it.
    n=$(acked_count "$d/kill")
    wait_until 20 acked_at_least "$d/kill" $((n + 10)) ||
        fail "SIGKILL under load: fewer than 10 more tasks acknowledged within 20 s of the kill"
    wait_until 5 health_says_workers "$base" 4
    code=$(curl -s --max-time 5 "$base/health")
    check_match "after the SIGKILL: GET /health answers with 4 workers" '"workers": *4[,}]' "$code"
    code=$(post_task "$base" '{"titulo":"despues del kill"}' "$d/kill/after")
    check_eq "after the SIGKILL: POST status" 201 "$code"
    stop_load "$d/kill"
    n=$(acked_count "$d/kill")
    check_eq "SIGKILL: the load was real (at least 20 acknowledged)" yes \
        "$([ "$n" -ge 20 ] && echo yes || echo "no ($n)")"
    stop_server TERM 12
    check_eq "SIGKILL test: SIGTERM exit status" 0 "$SERVER_STATUS"
    check_store "$f" "$d/kill"
    check_taskctl_verify "$f" "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$f" 2>/dev/null)"

    # SIGTERM with a request in flight: it is finished during the grace period,
    # while a new connection is refused at once (the listening socket is
    # closed), not left to hang in the kernel's queue.
    mkdir -p "$d/grace"
    start_server "$d/grace/tasks.json" --grace 10 --quiet || return
    base="http://127.0.0.1:$PORT"
    local conns0 rc
    conns0=$(server_conns)
    "$RAW_HTTP" -q -p "$PORT" -t 10000 'send:GET /health HTTP/1.1\r\nHost: e2e\r\n' \
        mark:sent sleep:4000 'send:\r\n' status:200 header:Connection:close close:1500 \
        >"$d/grace/inflight.out" 2>&1 &
    local inflight=$!
    track_pid $inflight
    # SIGTERM once a worker has accepted the connection and read the half request.
    wait_until 10 grep -q '^raw_http: mark: sent' "$d/grace/inflight.out" ||
        fail "the request in flight: raw_http did not send its first half within 10 s"
    wait_until 10 server_conns_ge $((conns0 + 1)) ||
        fail "the request in flight: no worker accepted its connection within 10 s"
    wait_until 10 port_all_read "$PORT" ||
        fail "the request in flight: its bytes still unread by the server after 10 s"
    kill -TERM "$SERVER_PID"
    # The 3 idle workers are gone at once; the 4th finishes its request.
    wait_until 2 num_children_is "$SERVER_PID" 1 ||
        fail "SIGTERM with a request in flight: expected 1 worker left within 2 s, got $(children_of "$SERVER_PID" | wc -l)"
    t0=$(now_ms)
    curl -s -o /dev/null --max-time 1.5 "$base/health"
    rc=$?
    t1=$(now_ms)
    check_eq "during the grace period: a new connection is refused at once (curl exit 7, not 28)" \
        "7 fast" "$rc $([ $((t1 - t0)) -lt 1000 ] && echo fast || echo "slow ($((t1 - t0)) ms)")"
    check_eq "during the grace period: the master still runs (the request is in flight)" yes \
        "$(kill -0 "$SERVER_PID" 2>/dev/null && echo yes || echo no)"
    # More SIGTERMs, every 2 ms until the master is gone: they change nothing,
    # and one that lands while it restores its signal handlers and exits must
    # not kill it (exit status 143) instead of the clean 0. Bounded: 12 s.
    (
        end=$((SECONDS + 12))
        while [ $SECONDS -lt $end ] && kill -TERM "$SERVER_PID" 2>/dev/null &&
            [ "$(awk '{print $3}' "/proc/$SERVER_PID/stat" 2>/dev/null)" != Z ]; do
            sleep 0.002
        done
    ) &
    local spammer=$!
    track_pid $spammer
    if wait_exit $inflight 10; then
        check_eq "the request in flight at SIGTERM: answered 200 with Connection: close" 0 \
            "$WAIT_STATUS"
        [ "$WAIT_STATUS" = 0 ] || sed 's/^/    raw_http: /' "$d/grace/inflight.out" >&2
    else
        fail "the request in flight at SIGTERM: raw_http still running after 10 s"
    fi
    stop_server TERM 12
    wait_exit $spammer 13 || kill "$spammer" 2>/dev/null
    check_eq "SIGTERM with a request in flight, and more during the shutdown: exit status" 0 \
        "$SERVER_STATUS"

    # SIGQUIT: immediate exit, even with a request in flight and --grace 10.
    mkdir -p "$d/quit"
    start_server "$d/quit/tasks.json" --grace 10 --quiet || return
    workers=$(children_of "$SERVER_PID" | tr '\n' ' ')
    conns0=$(server_conns)
    "$RAW_HTTP" hold -p "$PORT" -n 1 -d 8000 -s 'GET /health HTTP/1.1\r\nHo' \
        >"$d/quit/hold.out" 2>"$d/quit/hold.err" &
    local hq=$! alive=""
    track_pid $hq
    wait_held "SIGQUIT with a request in flight" "$d/quit/hold.err" "$conns0" 1
    local quit_log=$SERVER_LOG
    t0=$(now_ms)
    stop_server QUIT 10
    t1=$(now_ms)
    check_eq "SIGQUIT: exit status" 0 "$SERVER_STATUS"
    check_eq "SIGQUIT: exited at once (under 2 s, not the 10 s grace)" yes \
        "$([ $((t1 - t0)) -lt 2000 ] && echo yes || echo "no ($((t1 - t0)) ms)")"
    for i in $workers; do
        kill -0 "$i" 2>/dev/null && alive="$alive $i"
    done
    check_eq "SIGQUIT: every worker gone ($workers)" "" "$alive"
    check_match "SIGQUIT: logged" 'quitting now' "$(cat "$quit_log")"
    kill -TERM $hq 2>/dev/null
    wait $hq 2>/dev/null

    # Crash loop: a worker that dies by itself (here SIGABRT, as a failed
    # assertion would) within 1 s of its start is replaced after 1 s, never in a
    # fork storm; a worker killed from outside (SIGKILL) is replaced at once.
    # (A worker that cannot open the file does not die at all: see outside.sh.)
    mkdir -p "$d/crash"
    f="$d/crash/tasks.json"
    start_server "$f" --grace 5 --quiet --workers 2 || return
    local crash_log=$SERVER_LOG s0 s1 t_end
    s0=$(grep -c 'started worker' "$crash_log")
    t_end=$(($(now_ms) + 4000))
    while [ "$(now_ms)" -lt "$t_end" ]; do
        for victim in $(children_of "$SERVER_PID"); do
            kill -ABRT "$victim" 2>/dev/null
        done
        sleep 0.05
    done
    s1=$(grep -c 'started worker' "$crash_log")
    note "crash loop: $((s1 - s0)) forks in 4 s with every new worker aborted at once"
    check_eq "crash loop: 2 slots, one respawn a second each: 4 to 12 forks in 4 s, no fork storm" \
        yes "$([ $((s1 - s0)) -ge 4 ] && [ $((s1 - s0)) -le 12 ] && echo yes || echo "no ($((s1 - s0)))")"
    check_match "crash loop: a young death waits 1 s" 'died [0-9]+ ms after start: respawning in 1000 ms' \
        "$(cat "$crash_log")"
    if wait_until 5 num_children_is "$SERVER_PID" 2; then
        pass "crash loop: 2 workers again once the crashes stop"
    else
        fail "crash loop: expected 2 workers within 5 s, got $(children_of "$SERVER_PID" | wc -l)"
    fi
    check_eq "crash loop: served again" 200 "$(http_status "http://127.0.0.1:$PORT/health")"
    # SIGKILL comes from outside: replaced at once, even young.
    victim=$(children_of "$SERVER_PID" | head -1)
    s0=$(grep -c 'started worker' "$crash_log")
    kill -KILL "$victim"
    if wait_until 1 eval '[ "$(grep -c "started worker" "$crash_log")" -gt "$s0" ]'; then
        pass "crash loop: a worker killed with SIGKILL is replaced within 1 s"
    else
        fail "crash loop: no new worker within 1 s of a SIGKILL"
    fi
    stop_server TERM 12
    check_eq "crash loop: SIGTERM exit status" 0 "$SERVER_STATUS"

    # --quiet silences only the per-task lines: start-up, workers, a repaired
    # torn tail and shutdown are still logged.
    mkdir -p "$d/quiet"
    f="$d/quiet/tasks.json"
    start_server "$f" --grace 5 --quiet || return
    base="http://127.0.0.1:$PORT"
    local quiet_log=$SERVER_LOG
    for i in 1 2 3; do
        code=$(post_task "$base" "{\"titulo\":\"callada $i\",\"cliente\":\"q\",\"seq\":$i}" "$d/quiet/p$i")
        check_eq "--quiet: POST $i status" 201 "$code"
    done
    # A writer killed in the middle of an append leaves a torn tail (a partial
    # record instead of the closing bracket); the next worker to append cuts it.
    python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    data = f.read()
    assert data.endswith(b"\n]\n"), data[-20:]
    f.seek(len(data) - 3)
    f.write(b",\n{\"id\":4,\"titulo\":\"rota")
    f.truncate()' "$f" || fail "could not tear the tail of $f"
    code=$(post_task "$base" '{"titulo":"despues del corte","cliente":"q","seq":4}' "$d/quiet/p4")
    check_eq "--quiet: POST after a torn tail: status" 201 "$code"
    check_eq "--quiet: the torn record was cut, the new task got id 4" /tareas/4 \
        "$(header_value "$d/quiet/p4.h" Location)"
    stop_server TERM 12
    check_eq "--quiet server: SIGTERM exit status" 0 "$SERVER_STATUS"
    check_eq "--quiet: no per-task line" 0 "$(grep -c 'stored task' "$quiet_log")"
    check_match "--quiet: the torn-tail repair is logged, naming the file" \
        "warning: $f: torn tail at byte [0-9]+: cut [0-9]+ bytes" "$(cat "$quiet_log")"
    check_match "--quiet: the start-up line is logged" 'listening on 127\.0\.0\.1:' "$(cat "$quiet_log")"
    check_eq "--quiet: the 4 worker starts are logged" 4 "$(grep -c 'started worker' "$quiet_log")"
    check_match "--quiet: the shutdown is logged" 'shutting down.*SIGTERM' "$(cat "$quiet_log")"
    check_match "--quiet: the end of the shutdown is logged" 'all workers stopped' "$(cat "$quiet_log")"
    check_taskctl_verify "$f" 4

    # Options: a bad value exits 2 with one line naming the option (or the
    # variable); a flag wins over its environment variable. (A build without
    # locking also prints its warning line first: not counted.)
    local opt_out
    for i in '--workers abc' '--port 70000' '--grace 1.2345' '--nope' '--port'; do
        # shellcheck disable=SC2086 # i is the option and its value
        # --port 0 first: were a bad option ever accepted, no fixed port would be taken.
        opt_out=$(timeout 5 "$TASKSERVER" --bind 127.0.0.1 --port 0 --file "$d/opt.json" $i \
            2>&1 >/dev/null)
        rc=$?
        opt_out=$(printf '%s\n' "$opt_out" | grep -v 'WARNING: built with -Dlocking=false')
        check_eq "taskserver $i: exit status 2" 2 "$rc"
        check_eq "taskserver $i: one line on stderr" 1 "$(printf '%s\n' "$opt_out" | grep -c .)"
        check_match "taskserver $i: the message names ${i%% *}" "${i%% *}" "$opt_out"
    done
    opt_out=$(TASKSERVER_WORKERS=many timeout 5 "$TASKSERVER" --bind 127.0.0.1 --port 0 \
        --file "$d/opt.json" 2>&1 >/dev/null)
    rc=$?
    check_eq "TASKSERVER_WORKERS=many: exit status 2" 2 "$rc"
    check_match "TASKSERVER_WORKERS=many: the message names the variable and the value" \
        'TASKSERVER_WORKERS.*many' "$opt_out"
    [ -e "$d/opt.json" ] && fail "an invalid option must stop taskserver before it touches the file"
    mkdir -p "$d/env"
    TASKSERVER_WORKERS=2 TASKSERVER_MAX_BODY=100 start_server "$d/env/tasks.json" --quiet || return
    check_match "TASKSERVER_WORKERS=2 with --workers 4: the flag wins (start-up line)" \
        'listening on 127\.0\.0\.1:[0-9]+, 4 workers' "$(cat "$SERVER_LOG")"
    check_match "TASKSERVER_WORKERS=2 with --workers 4: the flag wins (/health)" '"workers": *4[,}]' \
        "$(curl -s --max-time 5 "http://127.0.0.1:$PORT/health")"
    code=$(post_task "http://127.0.0.1:$PORT" \
        "{\"titulo\":\"$(printf '%0150d' 0)\"}" "$d/env/big")
    check_eq "TASKSERVER_MAX_BODY=100 without a flag applies: a 163-byte body gets 413" 413 "$code"
    code=$(post_task "http://127.0.0.1:$PORT" '{"titulo":"corta"}' "$d/env/small")
    check_eq "TASKSERVER_MAX_BODY=100: a small body is stored" 201 "$code"
    stop_server TERM 12
    check_eq "environment server: SIGTERM exit status" 0 "$SERVER_STATUS"

    # A damaged file: refuses to start, names the file, leaves it untouched.
    mkdir -p "$d/damaged"
    local damaged_cases=(
        '[\n{"id":1,"titulo":"a"},\n{"id":2,"titulo":"b"},\nGARBAGE IN THE MIDDLE\n{"id":3,"titulo":"c"}\n]\n'
        '[\n{"id":1,"titulo":"a"},\n{"id":2,"tit\n{"id":3,"titulo":"c"}\n]\n'
        '[\n{"id":1,"titulo":"a"},\n\0\0\0\0\0\0\0\0\n{"id":2,"titulo":"c"}\n]\n'
        '{"id":1,"titulo":"a"}\n'
    )
    i=0
    local c out
    for c in "${damaged_cases[@]}"; do
        i=$((i + 1))
        f="$d/damaged/tasks$i.json"
        printf '%b' "$c" >"$f"
        cp "$f" "$f.orig"
        run_refusing "$f"
        out=$RUN_OUT
        check_eq "damaged file $i: refuses to start (exit non-zero within 5 s)" yes \
            "$([ "$RUN_RC" != timeout ] && [ "$RUN_RC" -ne 0 ] && echo yes || echo "no (exit $RUN_RC)")"
        if printf '%s' "$out" | grep -q 'listening on'; then
            fail "damaged file $i: expected no 'listening on' line, got: $out"
        fi
        check_match "damaged file $i: the error names the file" "$f" "$out"
        if cmp -s "$f" "$f.orig"; then
            pass "damaged file $i: file unchanged byte for byte"
        else
            fail "damaged file $i: expected $f unchanged, got it modified"
        fi
    done
    # The path is a directory.
    mkdir -p "$d/damaged/dir.json"
    run_refusing "$d/damaged/dir.json"
    out=$RUN_OUT
    check_eq "tasks file is a directory: refuses to start" yes \
        "$([ "$RUN_RC" != timeout ] && [ "$RUN_RC" -ne 0 ] && echo yes || echo "no (exit $RUN_RC)")"
    check_match "tasks file is a directory: the error names it" "$d/damaged/dir.json" "$out"
}

case "$SECTION" in
api) section_api ;;
http) section_http ;;
limits) section_limits ;;
signals) section_signals ;;
all)
    section_api
    section_http
    section_limits
    section_signals
    ;;
*)
    echo "usage: $0 api|http|limits|signals|all" >&2
    exit 2
    ;;
esac
e2e_finish
