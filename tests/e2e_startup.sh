#!/usr/bin/env bash
# e2e_startup.sh - a large tasks.json at start: the server listens once the tail is checked, and
# checks the body in the background (issue 15). GET /tareas waits for that verdict (503), then
# streams the list, or refuses it (500) when the middle is damaged, while appends go on and
# /health says where the damage is.
set -u
. "$(dirname "$0")/lib.sh"

e2e_init

# make_file PATH N DAMAGE: a canonical file of N records (~110 bytes each), past the server's
# 64 MiB threshold for a tail-only start; with DAMAGE=1, record N/2 is broken in place.
make_file() {
    python3 - "$@" <<'PY'
import sys
path, n, damage = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
with open(path, "w") as f:
    f.write("[\n")
    for i in range(1, n + 1):
        titulo = "tarea numero %d" % i if not (damage and i == n // 2) else 'rota", "x'
        f.write('{"id":%d,"titulo":"%s","cliente":"gen","seq":%d,'
                '"creada":"2026-12-03T10:00:00Z","pid":1}%s\n' % (i, titulo, i, "," if i < n else ""))
    f.write("]\n")
PY
}

N=700000
for damage in 0 1; do
    f="$E2E_DIR/big$damage.json"
    make_file "$f" "$N" "$damage" || { fail "cannot make $f"; continue; }
    size=$(stat -c %s "$f")
    check_eq "file $damage is over 64 MiB" yes "$([ "$size" -gt 67108864 ] && echo yes || echo "no ($size)")"
    start_server "$f" --workers 2 --quiet || continue
    base="http://127.0.0.1:$PORT"
    check_match "start-up says only the tail was checked" "$N tasks \\(the tail checked: the rest is checked in the background\\)" "$(cat "$SERVER_LOG")"
    # Appends need only the tail: they work at once, during the check.
    check_eq "POST during the background check" 201 \
        "$(http_status -XPOST "$base/tareas" -d '{"titulo":"durante"}')"
    check_eq "GET /tareas/ID during the background check" 200 "$(http_status "$base/tareas/$((N / 3))")"
    # The verdict: bounded wait for the log line.
    if ! wait_until 60 grep -qE 'whole file checked in the background|found by the background check' "$SERVER_LOG"; then
        fail "no verdict of the background check within 60 s"
        stop_server
        continue
    fi
    if [ "$damage" = 0 ]; then
        check_match "the body is canonical" 'the whole file checked in the background in [0-9]+ ms: canonical' "$(cat "$SERVER_LOG")"
        got=$(curl -s --max-time 60 "$base/tareas" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
        check_eq "GET /tareas after the check: the whole list" $((N + 1)) "$got"
    else
        check_match "the damage is logged with its byte" "byte [0-9]+: record $((N / 2)): invalid JSON" "$(cat "$SERVER_LOG")"
        check_eq "GET /tareas refuses a damaged body" 500 "$(http_status "$base/tareas")"
        h=$(curl -s --max-time 10 "$base/health")
        check_match "/health: 503 damaged, with the byte" '"status":"damaged","error":"[^"]*byte [0-9]+' "$h"
        check_eq "/health status" 503 "$(http_status "$base/health")"
        check_eq "POST still stored (the tail is sound)" 201 \
            "$(http_status -XPOST "$base/tareas" -d '{"titulo":"despues"}')"
    fi
    stop_server
    check_eq "exit status" 0 "$SERVER_STATUS"
    rm -f "$f"
done
e2e_finish
