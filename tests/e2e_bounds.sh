#!/usr/bin/env bash
# e2e_bounds.sh - bounds the server keeps that no other test reached (found by tools/mutate):
# the grace period's SIGKILL, the body timeout's 408, the byte bound of lingering.
#
#     e2e_bounds.sh CASE
#
#   grace_kill      SIGTERM while a connection holds half a request (header timeout 60 s):
#                   the worker is killed when --grace 2 runs out, the master exits 0 within
#                   seconds and logs it
#   body_timeout    a head with half its body: 408 and close at --body-timeout 1 (timed by
#                   raw_http on the socket), while the 10 s header timeout has not run out
#   linger_bytes    after a 413 the client keeps sending: the server reads and drops at most
#                   4 MiB (CONN_LINGER_BYTES) before it ends the connection, well before the
#                   2 s linger deadline would
#   linger_deadline after a 400 the client neither sends nor closes: the server lets the
#                   socket go at the 2 s linger deadline (CONN_LINGER_MS), not at the 30 s
#                   send timeout (timed on the server's descriptors, /proc/PID/fd)
#
# Environment (set by meson test): TASKSERVER, RAW_HTTP, LOCKING. Exit 0 pass, 1 fail, 77 skip.

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

CASE=${1:-}
e2e_init
RAW_HTTP=${RAW_HTTP:-$BUILD_ROOT/tests/raw_http}
[ -x "$RAW_HTTP" ] || skip "raw_http not found at $RAW_HTTP"

case_grace_kill() {
    local d="$E2E_DIR/grace" conns0 hold t0 ms
    mkdir -p "$d"
    start_server "$d/tasks.json" --workers 1 --grace 2 --header-timeout 60 --quiet || return
    conns0=$(server_conns)
    "$RAW_HTTP" hold -p "$PORT" -n 1 -d 30000 -s 'GET /health HTTP/1.1\r\nHo' \
        >"$d/hold.out" 2>"$d/hold.err" &
    hold=$!
    track_pid "$hold"
    wait_held "a half-sent request" "$d/hold.err" "$conns0" 1 || return
    local log=$SERVER_LOG
    t0=$(now_ms)
    stop_server TERM 20
    ms=$(($(now_ms) - t0))
    check_eq "SIGTERM with a request that never completes: exit status" 0 "$SERVER_STATUS"
    check_eq "... the master exits once --grace 2 has run out (1.9 to 8 s), not at the 60 s header timeout" \
        yes "$([ "$ms" -ge 1900 ] && [ "$ms" -le 8000 ] && echo yes || echo "no ($ms ms)")"
    check_match "... the master says the grace period ran out" \
        'grace period over: SIGKILL to 1 workers' "$(cat "$log")"
    check_match "... and that the worker was killed" 'killed by signal 9' "$(cat "$log")"
    kill -TERM "$hold" 2>/dev/null
    wait "$hold" 2>/dev/null
}

case_body_timeout() {
    local d="$E2E_DIR/body" out cms lo hi
    mkdir -p "$d"
    start_server "$d/tasks.json" --workers 1 --body-timeout 1 --header-timeout 10 --quiet || return
    # Held 8 s, under the header timeout: only the body timeout can end it.
    "$RAW_HTTP" hold -p "$PORT" -n 2 -d 8000 \
        -s 'POST /tareas HTTP/1.1\r\nHost: e2e\r\nContent-Length: 100\r\n\r\n{"tit' \
        >"$d/hold.out" 2>"$d/hold.err" || fail "raw_http hold: $(cat "$d/hold.err")"
    out=$(cat "$d/hold.out")
    check_match "half a body: both connections answered 408 and closed" \
        '^connected=2 failed=0 closed=2 answered=2 statuses=408:2 close_ms=' "$out"
    cms=$(printf '%s\n' "$out" | sed -n 's/.* close_ms=\([0-9]*\)\.\.\([0-9]*\)$/\1 \2/p')
    read -r lo hi <<<"$cms"
    check_eq "... closed 0.9 to 4.5 s after the first byte (--body-timeout 1)" yes \
        "$([ -n "$lo" ] && [ "$lo" -ge 900 ] && [ "$hi" -le 4500 ] && echo yes || echo "no (close_ms=$cms)")"
    stop_server TERM 15
    check_eq "SIGTERM: exit status" 0 "$SERVER_STATUS"
    check_eq "the file holds no task" "[
]" "$(cat "$d/tasks.json")"
}

# conns_at_most N: the server's workers hold at most N sockets (for wait_until).
# shellcheck disable=SC2317 # called through wait_until
conns_at_most() {
    [ "$(server_conns)" -le "$1" ]
}

case_linger_deadline() {
    local d="$E2E_DIR/lingerd" conns0 holder t0 ms
    mkdir -p "$d"
    start_server "$d/tasks.json" --workers 1 --quiet || return
    conns0=$(server_conns)
    # Reads the 400 and the server's FIN, then holds its end open for 15 s, silent.
    python3 - "$PORT" >"$d/client.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /health HTTP/1.1\r\nHost: a b\r\n\r\n")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print("answered", data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.1 ") else "none",
      flush=True)
time.sleep(15)
PY
    holder=$!
    track_pid "$holder"
    wait_until 10 grep -q '^answered' "$d/client.out" ||
        fail "the client got no answer and FIN within 10 s: $(cat "$d/client.out")"
    t0=$(now_ms)
    check_eq "a request with a bad Host: 400, then FIN" "answered 400" "$(cat "$d/client.out")"
    wait_until 12 conns_at_most "$conns0" ||
        fail "the server still holds the lingering socket 12 s after its answer"
    ms=$(($(now_ms) - t0))
    note "the lingering socket was let go $ms ms after the answer"
    check_eq "... the socket let go at the linger deadline (under 6 s), not the 30 s send timeout" \
        yes "$([ "$ms" -le 6000 ] && echo yes || echo "no ($ms ms)")"
    kill -TERM "$holder" 2>/dev/null
    wait "$holder" 2>/dev/null
    stop_server TERM 15
    check_eq "SIGTERM: exit status" 0 "$SERVER_STATUS"
}

case_linger_bytes() {
    local d="$E2E_DIR/linger" out
    mkdir -p "$d"
    start_server "$d/tasks.json" --workers 1 --max-body 1000 --quiet || return
    # A client that announces 100 MB, reads the 413, and goes on sending: how much does the
    # server take before it ends the connection? Bytes, not time: the sender stops at 64 MiB.
    out=$(python3 - "$PORT" <<'PY' 2>&1
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"POST /tareas HTTP/1.1\r\nHost: e2e\r\nContent-Length: 100000000\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    chunk = s.recv(4096)
    if not chunk:
        break
    head += chunk
status = head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/1.1 ") else "none"
sent, block, ended = 0, b"x" * 65536, "no"
t0 = time.monotonic()
s.settimeout(5)
try:
    while sent < 64 << 20:
        sent += s.send(block)
except OSError as e:
    ended = type(e).__name__
print(status, sent >> 20, ended, int((time.monotonic() - t0) * 1000))
PY
    )
    local status mib ended ms
    read -r status mib ended ms <<<"$out"
    check_eq "a body over --max-body: 413 before the body is read" 413 "$status"
    check_eq "the server ended the connection while the client was still sending" yes \
        "$([ "$ended" != no ] && [ -n "$ended" ] && echo yes || echo "no ($out)")"
    check_eq "... after taking less than 32 MiB (4 MiB dropped, plus socket buffers)" yes \
        "$([ -n "$mib" ] && [ "$mib" -lt 32 ] 2>/dev/null && echo yes || echo "no ($out)")"
    note "linger: 413, then $mib MiB sent in $ms ms before $ended"
    check_eq "the server still answers" 200 "$(http_status "http://127.0.0.1:$PORT/health")"
    stop_server TERM 15
    check_eq "SIGTERM: exit status" 0 "$SERVER_STATUS"
}

note "== bounds: $CASE (LOCKING=$LOCKING)"
case "$CASE" in
grace_kill) case_grace_kill ;;
body_timeout) case_body_timeout ;;
linger_bytes) case_linger_bytes ;;
linger_deadline) case_linger_deadline ;;
*)
    echo "usage: $0 grace_kill|body_timeout|linger_bytes|linger_deadline" >&2
    exit 2
    ;;
esac
e2e_finish
