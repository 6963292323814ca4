#!/usr/bin/env bash
# e2e_metrics.sh - GET /metrics, the log formats and the access log, against the real server on 127.0.0.1.
#
#     e2e_metrics.sh counts|promtool|logs
#
#   counts    4 workers, each made to serve 75 POSTs in turn (the other three stopped with
#             SIGSTOP, so which worker serves is certain): the 201s sum to 300 whichever
#             worker answers the scrape, one bad POST counts as one 400; a worker killed
#             with SIGKILL takes nothing from the sums, its replacement continues its slot,
#             the master counts the restart. In a build without metrics (METRICS=0):
#             /metrics answers 404 with a JSON error.
#   promtool  `promtool check metrics` accepts a scrape with every metric family present
#             (exit 77 without promtool: apt-get install prometheus)
#   logs      --log-format json: every stderr line is one JSON object with ts, level, prog,
#             pid, msg; --access-log FILE and -: one line per request, in order, with status
#             and size; text lines start with an RFC 3339 UTC time stamp
#
# Environment (set by meson test): TASKSERVER, CLIENTEMULATOR, LOCKING=1|0, METRICS=1|0.

. "$(dirname "$0")/lib.sh"

SECTION=${1:-counts}
e2e_init
METRICS=${METRICS:-1}
[ -x "$CLIENTEMULATOR" ] || skip "CLIENTEMULATOR is not an executable ('$CLIENTEMULATOR')"

# scrape BASE OUT: GET /metrics into OUT; fails the test on a transport error or a non-200.
scrape() {
    local code
    code=$(curl -s --max-time 10 -o "$2" -w '%{http_code}' "$1/metrics")
    if [ "$code" != 200 ]; then
        fail "GET /metrics: status $code, body: $(head -c 300 "$2" 2>/dev/null)"
        return 1
    fi
}

# series_sum FILE REGEX: the sum of the values of the samples whose series (name and
# labels) match the extended REGEX from the start of the line; "none" when none match.
series_sum() {
    # Through the environment: awk -v would process the backslashes.
    SERIES_RE="^$2" awk '
        /^#/ { next }
        { series = $0; sub(/ [^ ]*$/, "", series) }
        series ~ ENVIRON["SERIES_RE"] { sum += $NF; n++ }
        END { if (n) printf "%d\n", sum; else print "none" }' "$1"
}

# the workers of the server, one pid per line
workers() {
    children_of "$SERVER_PID"
}

# only_worker PID: SIGSTOP every other worker (a stopped worker is never woken for a new
# connection: EPOLLEXCLUSIVE wakes a worker that waits). all_workers undoes it.
only_worker() {
    local w
    for w in $(workers); do
        [ "$w" = "$1" ] || kill -STOP "$w"
    done
}
all_workers() {
    local w
    for w in $(workers); do
        kill -CONT "$w" 2>/dev/null
    done
}

# post_via PID N ID: N POSTs (clientemulator, 4 at a time) served by worker PID alone.
post_via() {
    local rc
    only_worker "$1"
    # Unlocked builds lose tasks under concurrent writers on purpose; one at a time there.
    "$CLIENTEMULATOR" --url "$BASE" --tasks "$2" --concurrency "$([ "$LOCKING" = 1 ] && echo 4 || echo 1)" \
        --id "$3" --wait 10 --timeout 10 --quiet
    rc=$?
    all_workers
    check_eq "clientemulator: $2 POSTs through worker $1 acknowledged" 0 "$rc"
}

case_counts() {
    local f="$E2E_DIR/tasks.json" m="$E2E_DIR/m.txt" pids w i victim new distinct code out
    start_server "$f" --quiet || return
    BASE="http://127.0.0.1:$PORT"
    if [ "$METRICS" = 0 ]; then
        code=$(curl -s --max-time 10 -o "$m" -w '%{http_code}' "$BASE/metrics")
        check_eq "no metrics built in: GET /metrics status" 404 "$code"
        check_match "no metrics built in: the error says so" '"error":"metrics are not built in' "$(cat "$m")"
        out=$("$CLIENTEMULATOR" --url "$BASE" --tasks 2 --id off --wait 10 --metrics "$BASE" 2>&1)
        check_eq "no metrics built in: clientemulator --metrics still exits 0" 0 "$?"
        check_match "no metrics built in: clientemulator says why" \
            'server lock waits: unknown \(GET .*/metrics answered HTTP 404 \(a server built with -Dmetrics=false\?\)\)' "$out"
        stop_server
        return
    fi
    pids=$(workers | sort -n | tr '\n' ' ')
    check_eq "4 workers running" 4 "$(echo $pids | wc -w)"
    i=0
    for w in $pids; do
        i=$((i + 1))
        post_via "$w" 75 "w$i"
    done
    # The file says who stored what: every worker stored its 75.
    distinct=$(python3 -c 'import json,sys,collections
c = collections.Counter(t["pid"] for t in json.load(open(sys.argv[1])))
print(" ".join(str(n) for _, n in sorted(c.items())))' "$f")
    check_eq "each of the 4 workers stored 75 tasks" "75 75 75 75" "$distinct"
    code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' --data-binary '{"titulo":' "$BASE/tareas")
    check_eq "a bad POST" 400 "$code"

    # Whichever worker answers (each scrape is a new connection), the sums are the same.
    for i in 1 2 3 4 5 6; do
        scrape "$BASE" "$m" || return
        check_eq "scrape $i: POST /tareas 201 sums to 300" 300 \
            "$(series_sum "$m" 'taskserver_http_requests_total\{method="POST",path="/tareas",code="201"\}')"
        check_eq "scrape $i: POST /tareas 400 sums to 1" 1 \
            "$(series_sum "$m" 'taskserver_http_requests_total\{method="POST",path="/tareas",code="400"\}')"
    done
    check_eq "appends counted" 300 "$(series_sum "$m" 'taskserver_appends_total')"
    check_eq "taskserver_tasks is the file's count" 300 "$(series_sum "$m" 'taskserver_tasks')"
    check_eq "POST duration histogram: _count = the POSTs answered" 301 \
        "$(series_sum "$m" 'taskserver_http_request_duration_seconds_count\{method="POST",path="/tareas"\}')"
    check_eq "POST duration histogram: +Inf bucket = _count" 301 \
        "$(series_sum "$m" 'taskserver_http_request_duration_seconds_bucket\{method="POST",path="/tareas",le="\+Inf"\}')"
    if [ "$LOCKING" = 1 ]; then
        # Every append runs under a write lock; a worker stores all the POSTs of one
        # event-loop turn under one lock (a batch): from 1 hold to one per task.
        local wwaits wholds
        wwaits=$(series_sum "$m" 'taskserver_lock_wait_seconds_count\{lock="write"\}')
        wholds=$(series_sum "$m" 'taskserver_lock_hold_seconds_count\{lock="write"\}')
        check_eq "write lock waits: 1 to 300 (a batch per turn)" yes \
            "$([ "$wwaits" -ge 1 ] && [ "$wwaits" -le 300 ] && echo yes || echo "no ($wwaits)")"
        check_eq "write lock holds: one per granted wait" "$wwaits" "$wholds"
    else
        check_eq "unlocked build: no lock waits" 0 \
            "$(series_sum "$m" 'taskserver_lock_wait_seconds_count')"
    fi
    check_eq "taskserver_workers" 4 "$(series_sum "$m" 'taskserver_workers')"
    check_eq "no restarts yet" 0 "$(series_sum "$m" 'taskserver_worker_restarts_total')"
    check_eq "/metrics GETs are counted too" yes \
        "$([ "$(series_sum "$m" 'taskserver_http_requests_total\{method="GET",path="/metrics",code="200"\}')" -ge 5 ] && echo yes || echo no)"

    # SIGKILL to a worker: its counts stay in its slot, the replacement continues them.
    victim=$(echo $pids | awk '{print $2}')
    kill -KILL "$victim"
    note "SIGKILL to worker $victim"
    if ! wait_until 10 sh -c "[ \"\$(pgrep -P $SERVER_PID | wc -l)\" = 4 ] && ! pgrep -P $SERVER_PID | grep -qx $victim"; then
        fail "the master did not replace worker $victim within 10 s"
        return
    fi
    new=$(workers | grep -vxF -f <(echo $pids | tr ' ' '\n'))
    check_eq "one new worker" 1 "$(echo $new | wc -w)"
    scrape "$BASE" "$m" || return
    check_eq "after SIGKILL: 201s still sum to 300" 300 \
        "$(series_sum "$m" 'taskserver_http_requests_total\{method="POST",path="/tareas",code="201"\}')"
    check_eq "after SIGKILL: the 400 is still counted" 1 \
        "$(series_sum "$m" 'taskserver_http_requests_total\{method="POST",path="/tareas",code="400"\}')"
    check_eq "after SIGKILL: the master counted one restart" 1 \
        "$(series_sum "$m" 'taskserver_worker_restarts_total')"
    check_eq "after SIGKILL: 4 workers" 4 "$(series_sum "$m" 'taskserver_workers')"
    post_via "$new" 20 "w5"
    scrape "$BASE" "$m" || return
    check_eq "the replacement counts on: 320" 320 \
        "$(series_sum "$m" 'taskserver_http_requests_total\{method="POST",path="/tareas",code="201"\}')"
    check_eq "appends after the replacement: 320" 320 "$(series_sum "$m" 'taskserver_appends_total')"

    # clientemulator --metrics: the waits of its own run only (one POST at a time, so each
    # is its own batch and takes the write lock once; /health and /metrics take none).
    local out want
    out=$("$CLIENTEMULATOR" --url "$BASE" --tasks 40 --concurrency 1 \
        --id cm --wait 10 --metrics "$BASE" 2>&1)
    check_eq "clientemulator --metrics: exit status" 0 "$?"
    want=$([ "$LOCKING" = 1 ] && echo 40 || echo 0)
    check_match "clientemulator --metrics: $want waits during its run, p50/p99 as bucket estimates" \
        "^server lock waits during the run: $want \(from $BASE/metrics\)$([ "$LOCKING" = 1 ] &&
            echo ', wait p50 [0-9.]+ us, p99 [0-9.]+ us \(estimated from the histogram buckets\)')$" \
        "$(grep '^server lock waits' <<<"$out")"
    out=$("$CLIENTEMULATOR" --url "$BASE" --tasks 1 --id cm2 --wait 10 --metrics "$BASE/metrics" --json 2>&1)
    check_match "clientemulator --metrics --json" "\"server_lock_waits\":\\{\"waits\":$([ "$LOCKING" = 1 ] && echo 1 || echo 0)," "$out"
    stop_server
    check_eq "server exit status" 0 "$SERVER_STATUS"
}

case_promtool() {
    local f="$E2E_DIR/tasks.json" m="$E2E_DIR/m.txt" out code fam
    [ "$METRICS" = 1 ] || skip "built with -Dmetrics=false: no /metrics to check"
    require_tool promtool
    start_server "$f" --quiet --workers 2 || return
    BASE="http://127.0.0.1:$PORT"
    "$CLIENTEMULATOR" --url "$BASE" --tasks 50 --concurrency "$([ "$LOCKING" = 1 ] && echo 8 || echo 1)" \
        --id p --quiet --wait 10 || fail "clientemulator could not store 50 tasks"
    curl -s -o /dev/null --max-time 10 "$BASE/tareas/1"
    curl -s -o /dev/null --max-time 10 "$BASE/nope"
    curl -s -o /dev/null --max-time 10 -X DELETE "$BASE/health"
    scrape "$BASE" "$m" || return
    if out=$(promtool check metrics <"$m" 2>&1); then
        pass "promtool check metrics: ${out:-no complaints}"
    else
        fail "promtool check metrics: $out"
    fi
    for fam in taskserver_http_requests_total taskserver_http_request_duration_seconds \
        taskserver_lock_wait_seconds taskserver_lock_hold_seconds taskserver_lock_timeouts_total \
        taskserver_tasks taskserver_appends_total taskserver_fsync_seconds taskserver_connections \
        taskserver_connections_refused_total taskserver_workers taskserver_worker_restarts_total \
        taskserver_outside_changes_total taskserver_build_info; do
        check_match "family $fam present" "^# TYPE $fam " "$(cat "$m")"
    done
    check_eq "a 404 is labelled path other" 1 \
        "$(series_sum "$m" 'taskserver_http_requests_total\{method="GET",path="other",code="404"\}')"
    check_eq "a 405 is labelled method other" 1 \
        "$(series_sum "$m" 'taskserver_http_requests_total\{method="other",path="/health",code="405"\}')"
    check_match "build_info" "^taskserver_build_info\{version=\"[0-9.]+\",locking=\"$([ "$LOCKING" = 1 ] && echo true || echo false)\"\} 1$" \
        "$(grep '^taskserver_build_info' "$m")"
    code=$(curl -s --max-time 10 -I -o "$E2E_DIR/head.h" -w '%{http_code}' "$BASE/metrics")
    check_eq "HEAD /metrics status" 200 "$code"
    check_match "HEAD /metrics: the exposition's content type" \
        '^Content-Type: text/plain; version=0\.0\.4; charset=utf-8' "$(tr -d '\r' <"$E2E_DIR/head.h")"
    stop_server
}

case_logs() {
    local f="$E2E_DIR/tasks.json" acc="$E2E_DIR/access.log" bad n
    # JSON log lines, the access log in a file.
    start_server "$f" --log-format json --access-log "$acc" --workers 2 || return
    BASE="http://127.0.0.1:$PORT"
    curl -s -o /dev/null --max-time 10 -H 'Content-Type: application/json' \
        --data-binary '{"titulo":"uno \"citado\"","cliente":"e2e"}' "$BASE/tareas"
    curl -s -o /dev/null --max-time 10 "$BASE/tareas/1"
    curl -s -o /dev/null --max-time 10 -I "$BASE/tareas"
    curl -s -o /dev/null --max-time 10 "$BASE/no%22pe"
    # Written each loop turn, not kept until the worker exits.
    if wait_until 5 grep -q 'GET /no%22pe' "$acc"; then
        pass "access log: the lines are written while the server runs"
    else
        fail "access log: the last request's line not in $acc within 5 s: $(cat "$acc")"
    fi
    stop_server
    check_eq "json logs: exit status" 0 "$SERVER_STATUS"
    bad=$(python3 -c 'import json, re, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    if "WARNING: built with -Dlocking=false" in line:
        continue  # printed before the options are read: plain text by design
    n += 1
    d = json.loads(line)
    assert set(d) == {"ts", "level", "prog", "pid", "msg"}, d
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", d["ts"]), d
    assert d["level"] in ("info", "warning", "error") and d["prog"] == "taskserver", d
    assert isinstance(d["pid"], int), d
print(n)' "$SERVER_LOG" 2>&1)
    check_match "json logs: every stderr line is one JSON object" '^[0-9]+$' "$bad"
    check_match "json logs: the start-up line, as JSON" '"msg":"taskserver [0-9.]+: listening on 127\.0\.0\.1:' \
        "$(cat "$SERVER_LOG")"
    check_match "json logs: the per-task line, its quotes escaped" \
        '"msg":"worker [0-9]+: stored task 1 \\"uno \\\\\\"citado\\\\\\"\\" from e2e"' "$(cat "$SERVER_LOG")"
    n=$(wc -l <"$acc")
    check_eq "access log: one line per request (4 and the start-up health checks)" yes \
        "$([ "$n" -ge 4 ] && echo yes || echo "no ($n lines)")"
    check_match "access log: the POST" \
        '^127\.0\.0\.1 - - \[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} \+0000\] "POST /tareas HTTP/1\.1" 201 [0-9]+ [0-9]+\.[0-9]{6}$' \
        "$(grep 'POST' "$acc")"
    check_match "access log: the GET of one task" '"GET /tareas/1 HTTP/1\.1" 200 [0-9]+ ' "$(cat "$acc")"
    check_match "access log: HEAD has no body bytes" '"HEAD /tareas HTTP/1\.1" 200 - ' "$(cat "$acc")"
    check_match "access log: a 404" '"GET /no%22pe HTTP/1\.1" 404 [0-9]+ ' "$(cat "$acc")"

    # Text lines carry a time stamp; the access log on stdout ("-").
    start_server "$f" --access-log - --workers 1 || return
    BASE="http://127.0.0.1:$PORT"
    curl -s -o /dev/null --max-time 10 "$BASE/health?x=1"
    stop_server
    bad=$(grep -v 'WARNING: built with -Dlocking=false' "$SERVER_LOG" |
        grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z taskserver\[[0-9]+\]: ')
    check_eq "text logs: every stderr line starts with a UTC time stamp" 0 "$bad"
    check_match "access log on stdout" '"GET /health\?x=1 HTTP/1\.1" 200 [0-9]+ ' "$(cat "$SERVER_LOG.out")"

    # An access log that cannot be opened: exit 1 before listening, naming it.
    out=$("$TASKSERVER" --port 0 --bind 127.0.0.1 --workers 1 --file "$f" \
        --access-log "$E2E_DIR/no/such/dir/a.log" 2>&1)
    check_eq "unusable access log: exit status" 1 "$?"
    check_match "unusable access log: the message names it" "access log $E2E_DIR/no/such/dir/a\.log: No such file" "$out"
    out=$("$TASKSERVER" --log-format xml 2>&1)
    check_eq "--log-format xml: usage error" 2 "$?"
    check_match "--log-format xml: the message" 'invalid value for --log-format: "xml" \(expected one of text\|json\)' "$out"
}

case "$SECTION" in
counts) case_counts ;;
promtool) case_promtool ;;
logs) case_logs ;;
*)
    echo "usage: $0 counts|promtool|logs" >&2
    exit 2
    ;;
esac
e2e_finish
