#!/bin/sh
# compose/role.sh - what each container of the classroom run does (installed in the image as
# /usr/local/bin/taskserver-role).
#
#   taskserver-role server    check the image is the build the compose file asks for, then
#                             exec taskserver on /data/tasks.json (kept across down/up)
#   taskserver-role verifier  open a new run (run N), wait for every client of it, judge it
#   taskserver-role client    join run N: start together with the other clients (barrier),
#                             send, check its own tasks, then wait for the verdict and exit
#
# Runs. The data stays across `up`s (only `down -v` deletes the volume), so each `up` adds
# a run to the same list, and the verdict must judge this run's tasks only. The verifier
# opens run N (/data/runs/N, N = the last run + 1) and only then turns healthy; the clients
# start once it is (depends_on: service_healthy), read N from /data/runs/current, and send
# as "<client id>@runN". The verifier judges the records whose cliente matches "*@runN"
# (taskctl verify --cliente). The health check reads a file in the verifier's /tmp, a tmpfs
# that starts empty with every start of the container: a run opened by an earlier start
# cannot make it healthy.
#
# The barrier: clientemulator --barrier /data/runs/N --clients CLIENTS (src/client_barrier.h):
# every client writes a ready file there, waits until CLIENTS are ready, and all start at
# one instant on the kernel's clock, which all containers on a host share. Each then sends
# BURST tasks (default 1) every INTERVAL_MS ms (default 5) on a common schedule, so that
# their appends meet.
#
# Why the clients wait for the verdict instead of exiting: `up --exit-code-from verifier`
# (for scripts) implies --abort-on-container-exit, which stops everything when the FIRST
# container exits. So a client waits until the verifier has written its verdict, then 2 s
# more (by then compose has seen the verifier exit), then exits. With a plain `up` that
# leaves the server running alone, as in the original. A second `up` within those 2 s finds
# the clients running and does not start them again: they join the new run themselves.
#
# The stack (compose/stack.yaml, docker stack deploy): several server replicas behind one
# name, and no depends_on. There the run number comes from the environment (RUN, the same
# for the verifier and every client), and the verifier opens it only once SERVERS replicas
# answer (each one's /health printed), after the optional reset (RESET=1: taskctl reset,
# under the write lock, never a server emptying the file at its start); the clients wait
# for the run to be opened, send to every replica (clientemulator spreads its tasks over
# the addresses `server` resolves to, and waits for SERVERS of them), and exit once done.
# The verdict adds how many of the run's tasks each replica stored (the records' "host").
#
# Environment: CLIENT_ID, SERVER_URL, TASKS, CONCURRENCY, INTERVAL_MS, CLIENTS (clients and
# verifier); TASKS_FILE (default /data/tasks.json); EXPECT_LOCKING (true|false: the build
# the server must be, else it refuses to start, and the verdict fails); FRESH_START=1 (the
# server empties TASKS_FILE first: the unlocked run, whose file is damaged by design; never
# in the stack, where other replicas would be serving the file); VERIFY_TIMEOUT_S (how long
# the verifier waits for the clients, default 600). The stack's: RUN (the run number, given;
# without it the verifier picks the next one and the clients read it from runs/current),
# SERVERS (how many server replicas must answer), RESET=1, START_TIMEOUT_S (how long the
# verifier waits for the replicas and a client for the run to open, default 300).
set -u

data=/data
file=${TASKS_FILE:-$data/tasks.json}
runs=$data/runs

log() {
    echo "taskserver-role: $*" >&2
}

# Prints a positive decimal number from the environment, or fails naming the variable
# (run in $(...): the caller exits).
number() {
    case "$2" in
    '' | *[!0-9]* | 0*)
        log "$1 must be a positive number, not '$2'"
        exit 2
        ;;
    esac
    echo "$2"
}

# Started as root (only compose.hostdata.yaml does that, with CHOWN, SETUID and SETGID):
# run as the owner of the host folder mounted on /data, so that the files are the host
# user's; a folder Docker created (owned by root) is given to the image's user instead.
# Then /data/runs is made writable for the other containers, which run as the image's user.
drop_privileges() {
    [ "$(id -u)" = 0 ] || return 0
    owner=$(stat -c %u:%g "$data") || exit 1
    case "$owner" in
    0:*)
        log "$data belongs to root (Docker created the host folder): giving it to uid 10001;" \
            "create the folder yourself before 'up' to keep it yours"
        chown 10001:10001 "$data" || exit 1
        owner=10001:10001
        ;;
    esac
    log "running as uid:gid $owner, the owner of $data"
    exec setpriv --reuid="${owner%:*}" --regid="${owner#*:}" --clear-groups -- "$0" "$@"
}

# locking_of TEXT: true, false or unknown, from taskserver --version or a /health body.
locking_of() {
    case "$1" in
    *"locking on"* | *'"locking":true'*) echo true ;;
    *"locking OFF"* | *'"locking":false'*) echo false ;;
    *) echo unknown ;;
    esac
}

role_server() {
    drop_privileges server "$@"
    # A stale image (built before, or tagged by hand) must not pass for the build the
    # compose file asks for: the unlocked build would damage the list.
    want=${EXPECT_LOCKING:-}
    if [ -n "$want" ]; then
        have=$(locking_of "$(taskserver --version 2>&1)")
        if [ "$have" != "$want" ]; then
            log "refusing to start: this image's taskserver has locking=$have, the compose file" \
                "asks for locking=$want: a stale or wrong image (rebuild: docker-compose up --build)"
            exit 1
        fi
    fi
    mkdir -p "$runs" "$(dirname "$file")" || exit 1
    # The other containers run as the image's user: when /data is someone else's (a host
    # folder), they still need to write their barrier files.
    if [ "$(stat -c %u "$data")" != 10001 ]; then
        chmod 1777 "$runs" || exit 1
    fi
    if [ "${FRESH_START:-0}" = 1 ]; then
        log "FRESH_START=1: $file emptied (the unlocked run starts from an empty list)"
        rm -f "$file" || exit 1
    fi
    log "the list is $file: kept across down/up (down -v deletes it)"
    exec taskserver --file "$file" "$@"
}

# wait_files DIR COUNT SECONDS: until DIR holds COUNT files (not dot files); 1 on timeout.
wait_files() {
    waited=0
    while [ "$(find "$1" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | wc -l)" -lt "$2" ]; do
        [ "$waited" -lt $(($3 * 10)) ] || return 1
        sleep 0.1
        waited=$((waited + 1))
    done
}

# field KEY FILE: the value of KEY=VALUE in FILE, empty when absent.
field() {
    sed -n "s/^$1=//p" "$2" 2>/dev/null | head -n 1
}

say() {
    echo "verifier: $*"
}

# wait_replicas N URL: until N addresses of URL's host answer GET /health (the stack's
# replicas, endpoint_mode dnsrr), bounded by START_TIMEOUT_S; prints each one's /health and
# keeps, in $replicas, "N replicas, W workers each" for the verdict. 1 on timeout.
wait_replicas() {
    t=$(number START_TIMEOUT_S "${START_TIMEOUT_S:-300}") || exit 2
    say "waiting for $1 server replicas behind $2 (at most $t s)"
    if ! out=$(clientemulator --health --servers "$1" --url "$2" --wait "$t" 2>&1); then
        printf '%s\n' "$out" | sed 's/^/verifier: /'
        say "verdict: FAIL, fewer than $1 server replicas answered within $t s: no run"
        return 1
    fi
    printf '%s\n' "$out" | sed 's/^/verifier: replica: /'
    # One "workers":W per replica: the same W everywhere, or say each.
    w=$(printf '%s\n' "$out" | sed -n 's/.*"workers":\([0-9]*\).*/\1/p' | sort -u | tr '\n' ' ')
    w=${w% }
    case "$w" in
    *' '*) replicas="$1 replicas, workers per replica: $w" ;;
    *) replicas="$1 replicas, $w workers each" ;;
    esac
}

role_verifier() {
    clients=$(number CLIENTS "${CLIENTS:-2}") || exit 2
    tasks=$(number TASKS "${TASKS:-100}") || exit 2
    timeout=$(number VERIFY_TIMEOUT_S "${VERIFY_TIMEOUT_S:-600}") || exit 2
    expect=$((clients * tasks))
    url=${SERVER_URL:-http://server:9000}

    mkdir -p "$runs" || exit 1
    if [ -n "${SERVERS:-}" ]; then
        servers=$(number SERVERS "$SERVERS") || exit 2
        wait_replicas "$servers" "$url" || exit 1
    fi
    if [ "${RESET:-0}" = 1 ]; then
        # Its own step, before the run opens: taskctl takes the write lock, so the
        # replicas, which serve the file meanwhile, see the empty list and follow it.
        say "RESET=1: taskctl reset of $file, under the write lock (the replicas keep serving)"
        taskctl -f "$file" reset || exit 1
    fi
    if [ -n "${RUN:-}" ]; then
        # Given (the stack): the clients know it already, so it must be new here.
        run=$(number RUN "$RUN") || exit 2
        if ! mkdir "$runs/$run" 2>/dev/null; then
            say "verdict: FAIL, run $run exists on this volume already (an earlier deploy):" \
                "deploy with another RUN, or remove the volume"
            exit 1
        fi
    else
        # A new run. mkdir is atomic: two verifiers never get the same number.
        last=$(find "$runs" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*' -printf '%f\n' |
            grep -E '^[0-9]+$' | sort -n | tail -n 1)
        run=$((${last:-0} + 1))
        while ! mkdir "$runs/$run" 2>/dev/null; do
            [ -d "$runs/$run" ] || {
                log "cannot create $runs/$run"
                exit 1
            }
            run=$((run + 1))
        done
    fi
    { echo "$run" >"$runs/.current.$$" && mv "$runs/.current.$$" "$runs/current"; } || exit 1
    # The file this run is judged in (TASKS_FILE may name another, as compose.nolock.yaml
    # does), for the clients to check their tasks in: the same file, whatever their own
    # environment says.
    printf '%s\n' "$file" >"$runs/$run/file" || exit 1
    # Healthy from now on: the clients start (the stack's wait for the file "open").
    { : >/tmp/run-ready && : >"$runs/$run/open"; } || exit 1
    say "run $run: $clients clients x $tasks tasks, waiting for them (at most $timeout s)"

    if ! wait_files "$runs/$run/result" "$clients" "$timeout"; then
        n=$(find "$runs/$run/result" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | wc -l)
        say "verdict: FAIL, run $run: only $n of $clients clients finished within $timeout s"
        : >"$runs/$run/verdict"
        exit 1
    fi

    failed=0
    # One answer is enough here (SERVERS emptied): each replica's was printed at the start.
    health=$(SERVERS='' clientemulator --health --url "$url" --wait 5 2>&1)
    locking=$(locking_of "$health")
    say "server: $health"
    if [ -n "${EXPECT_LOCKING:-}" ] && [ "$locking" != "$EXPECT_LOCKING" ]; then
        say "the server reports locking=$locking but this run expects locking=$EXPECT_LOCKING:" \
            "a stale or wrong image (rebuild: docker-compose up --build)"
        failed=1
    fi

    # The clients' own reports: exit status, sent, acknowledged, and what each found missing.
    sent=0 acked=0 missing=0 finished=0 checked=0
    for f in "$runs/$run/result"/*; do
        finished=$((finished + 1))
        rc=$(field exit "$f")
        s=$(field sent "$f") a=$(field acked "$f") m=$(field missing "$f")
        sent=$((sent + ${s:-0})) acked=$((acked + ${a:-0})) missing=$((missing + ${m:-0}))
        [ -n "$m" ] && checked=$((checked + 1))
        if [ "$rc" != 0 ]; then
            say "client $(field id "$f") exited with status $rc (1: tasks lost, doubled or" \
                "refused; 3: no server; 4: the other clients never came)"
            failed=1
        fi
    done
    if [ "$finished" -ne "$clients" ]; then
        say "$finished clients reported but CLIENTS=$clients: set CLIENTS to the number of clients"
        failed=1
    fi

    out=$(taskctl -f "$file" verify --cliente "*@run$run" --expect "$expect" 2>&1)
    vrc=$?
    printf '%s\n' "$out"
    # Stored = this run's records readable in the file ("count: expected N, found M").
    stored=$(printf '%s\n' "$out" | sed -n 's/^count: expected [0-9]*, found \([0-9]*\).*/\1/p')
    case "$stored" in '' | *[!0-9]*) stored=0 ;; esac
    switches=$(printf '%s\n' "$out" | sed -n 's/^interleaving: \([0-9]*\) switches.*/\1/p')

    # How long the clients overlapped, from the spans they published after sending.
    overlap=$(cat "$runs/$run/done"/* 2>/dev/null | awk -F= '
        BEGIN { n = 0 }
        $1 == "start_ns" { s[n] = $2 } $1 == "end_ns" { e[n++] = $2 }
        END {
            if (n < 2) { print "fewer than 2 clients reported their span"; exit }
            lo = s[0]; hi = e[0]; from = s[0]; to = e[0]
            for (i = 1; i < n; i++) {
                if (s[i] < lo) lo = s[i]; if (e[i] > hi) hi = e[i]
                if (s[i] > from) from = s[i]; if (e[i] < to) to = e[i]
            }
            all = to > from ? (to - from) / 1e6 : 0; span = (hi - lo) / 1e6
            pct = span > 0 ? 100 * all / span : 0
            printf "all %d clients were sending at once for %.1f ms of %.1f ms (%.0f%%)",
                n, all, span, pct
        }')
    say "overlap: $overlap"
    [ -n "$switches" ] &&
        say "interleaving: $switches switches between clients in file order (at most $((expect - 1)))"
    [ -n "${replicas:-}" ] && say "servers: $replicas"
    say "sent $sent, acknowledged (201) $acked, stored $stored: the records of run $run readable in $file"
    # Who stored them: taskctl verify's "host NAME: N (P%)" lines, from the records' "host".
    shares=$(printf '%s\n' "$out" | sed -n 's/^host \(.*\): \([0-9]*\) (\(.*\))$/\1 \2 (\3)/p' |
        paste -sd, - | sed 's/,/, /g')
    [ -n "$shares" ] && say "stored by: $shares"
    if [ "$acked" -lt "$sent" ]; then
        say "acknowledged < sent: $((sent - acked)) requests got an error or no answer, so" \
            "nothing was promised for them (each client's log above says which and why)"
    fi
    if ! taskctl -f "$file" check >/dev/null 2>&1; then
        say "the file is not in the store's layout ($(taskctl -f "$file" check 2>&1 | tail -n 1))."
        say "stored counts the records readable line by line; where the file is damaged (not" \
            "merely in another layout), a JSON parser such as python3 -m json.tool refuses the" \
            "whole file and reads no task at all"
    fi
    note="server locking=$locking"
    if [ "$vrc" -eq 0 ] && [ "$failed" -eq 0 ]; then
        say "verdict: PASS, $stored of $expect tasks of run $run stored, each exactly once ($note)"
        : >"$runs/$run/verdict"
        exit 0
    fi
    # Lost: acknowledged but not in the file. Each client checked its own 201s, seq by seq,
    # in the file itself once all clients were done (clientemulator --verify-file): together
    # the exact count. Acknowledged - stored is only a bound: the file may also hold tasks
    # whose requests failed (each hides one that was lost), and it is all there is when a
    # client could not report its check.
    bound=$((acked > stored ? acked - stored : 0))
    if [ "$checked" -eq "$clients" ]; then
        lost="$missing"
        [ "$missing" -ne "$bound" ] &&
            say "lost: the clients' own checks in $file found $missing of their acknowledged" \
                "tasks missing (acknowledged - stored gives $bound: the file also holds tasks" \
                "whose requests failed, or records of the run it could not read)"
    else
        lost="at least $bound"
        say "only $checked of $clients clients reported their check: the lost count is" \
            "acknowledged - stored, a lower bound"
    fi
    say "verdict: FAIL, $stored of $expect tasks of run $run stored; $acked acknowledged," \
        "$lost of them lost ($note)"
    : >"$runs/$run/verdict"
    exit 1
}

# client_run RUN: one run of this client; its exit status.
client_run() {
    # clientemulator's own default id is the host name: unique per container.
    id="${CLIENT_ID:-$(cat /proc/sys/kernel/hostname)}@run$1"
    # The check reads the file itself (on the shared volume, under the read lock), not GET
    # /tareas: a server refuses to serve a list it finds damaged (500, 503), and the unlocked
    # run damages it, yet every record that can still be read must be counted. The file is
    # the one the verifier judges this run in.
    f=$(cat "$runs/$1/file" 2>/dev/null) || f=
    if [ -n "$f" ]; then
        clientemulator --verify-file "$f" --id "$id" --barrier "$runs/$1" --clients "${CLIENTS:-2}"
    else
        log "run $1 names no file to check in ($runs/$1/file): checking over GET /tareas"
        clientemulator --verify --id "$id" --barrier "$runs/$1" --clients "${CLIENTS:-2}"
    fi
    rc=$?
    # clientemulator wrote its result file, unless it failed before it could.
    name=$(printf '%s' "$id" | tr -c 'A-Za-z0-9._@-' '_')
    if [ ! -f "$runs/$1/result/$name" ]; then
        { mkdir -p "$runs/$1/result" &&
            printf 'id=%s\nexit=%s\n' "$id" "$rc" >"$runs/$1/result/.$name" &&
            mv "$runs/$1/result/.$name" "$runs/$1/result/$name"; } ||
            log "cannot record client $id's exit status in $runs/$1/result"
    fi
    log "client $id finished with exit status $rc; waiting for the verdict"
    return "$rc"
}

# The stack's client: run RUN, opened by the verifier once the replicas answer; no verdict
# to wait for (no --exit-code-from in a stack), so it exits when its own run is done.
role_stack_client() {
    run=$(number RUN "$RUN") || exit 2
    t=$(number START_TIMEOUT_S "${START_TIMEOUT_S:-300}") || exit 2
    if [ -e "$runs/$run/verdict" ]; then
        log "run $run was judged already (an earlier deploy on this volume):" \
            "deploy with another RUN"
        exit 1
    fi
    log "waiting for the verifier to open run $run (at most $t s)"
    i=0
    while [ ! -e "$runs/$run/open" ]; do
        if [ "$i" -ge $((t * 10)) ]; then
            log "run $run was not opened within $t s (is the verifier running? docker service logs)"
            exit 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
    client_run "$run"
}

role_client() {
    if [ -n "${RUN:-}" ]; then
        role_stack_client
        exit $?
    fi
    linger=$(number CLIENT_LINGER_S "${CLIENT_LINGER_S:-900}") || exit 2
    # The verifier opened the run before it turned healthy, and we started after that.
    run=$(cat "$runs/current" 2>/dev/null)
    while :; do
        case "$run" in
        '' | *[!0-9]*)
            log "no run in $runs/current: the verifier must start first (depends_on)"
            exit 1
            ;;
        esac
        client_run "$run"
        rc=$?
        # Wait for the verdict (bounded), then 2 s more: by then compose has seen the
        # verifier exit. A new run opened meanwhile (a second `up` while we were still
        # here: compose finds us running and does not start us again) is joined.
        i=0
        while [ ! -e "$runs/$run/verdict" ] && [ "$i" -lt $((linger * 10)) ]; do
            sleep 0.1
            i=$((i + 1))
        done
        i=0
        next=$run
        while [ "$next" = "$run" ] && [ "$i" -lt 20 ]; do
            sleep 0.1
            i=$((i + 1))
            next=$(cat "$runs/current" 2>/dev/null)
        done
        [ "$next" != "$run" ] || exit "$rc"
        log "a new run opened while this client waited: joining run $next"
        run=$next
    done
}

role=${1:-}
[ $# -gt 0 ] && shift
case "$role" in
server) role_server "$@" ;;
client) role_client ;;
verifier) role_verifier "$@" ;;
*)
    log "usage: taskserver-role server|client|verifier [ARGS...]"
    exit 2
    ;;
esac
