#!/bin/sh
# compose/role.sh - what each container of the distributed run does (installed in the image
# as /usr/local/bin/taskserver-role).
#
#   taskserver-role server    start a fresh run: empty /data, then exec taskserver
#   taskserver-role client    clientemulator --verify, record its exit status, then wait
#   taskserver-role verifier  wait for every client's record, then judge /data/tasks.json
#
# Why the clients wait instead of exiting: compose's --abort-on-container-exit (implied by
# --exit-code-from) stops everything when the FIRST container exits, in compose v2 and in
# docker-compose 1.29 alike. So a client must not end the run: it writes its exit status
# to /data/clients/ID and sleeps; the verifier is the only container that ends, and its
# exit status is the verdict. (depends_on: service_completed_successfully would look
# cleaner but dies on the same rule.)
#
# Environment: CLIENT_ID, SERVER_URL, TASKS, CONCURRENCY (the clients, read by
# clientemulator itself); CLIENTS and TASKS (the verifier expects CLIENTS x TASKS tasks);
# VERIFY_TIMEOUT_S (how long the verifier waits for the clients, default 600).
set -u

data=/data
file=$data/tasks.json
done_dir=$data/clients

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

role_server() {
    # Each `up` is a fresh run: the verdict is about this run's tasks, even when the volume
    # survived an earlier run (up without down -v). The clients and the verifier start
    # only once the server is healthy, so nobody reads /data while it is emptied here.
    rm -rf "$file" "$done_dir" || exit 1
    mkdir -p "$done_dir" || exit 1
    exec taskserver --file "$file" "$@"
}

role_client() {
    # clientemulator's own default id is the host name: unique per container.
    id=${CLIENT_ID:-$(cat /proc/sys/kernel/hostname)}
    export CLIENT_ID="$id"
    clientemulator --verify "$@"
    rc=$?
    # Written then renamed, so the verifier never reads a half-written record.
    name=$(printf '%s' "$id" | tr -c 'A-Za-z0-9._-' '_')
    if ! { echo "$rc" >"$done_dir/.$name.tmp" && mv "$done_dir/.$name.tmp" "$done_dir/$name"; }; then
        log "cannot record client $id's exit status in $done_dir"
    fi
    log "client $id finished with exit status $rc; waiting for the verifier"
    # Bounded: longer than the verifier waits; compose stops us with SIGKILL anyway.
    exec sleep "${CLIENT_LINGER_S:-900}"
}

role_verifier() {
    clients=$(number CLIENTS "${CLIENTS:-2}") || exit 2
    tasks=$(number TASKS "${TASKS:-100}") || exit 2
    timeout=$(number VERIFY_TIMEOUT_S "${VERIFY_TIMEOUT_S:-600}") || exit 2
    expect=$((clients * tasks))
    log "waiting for $clients clients to finish (at most $timeout s)"
    waited=0
    while :; do
        finished=$(find "$done_dir" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | wc -l)
        [ "$finished" -ge "$clients" ] && break
        if [ "$waited" -ge "$timeout" ]; then
            log "verdict: FAIL, only $finished of $clients clients finished within $timeout s"
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done

    failed=0
    for f in "$done_dir"/*; do
        rc=$(cat "$f")
        if [ "$rc" != 0 ]; then
            log "client ${f##*/} exited with status $rc (1: tasks lost, doubled or refused)"
            failed=1
        fi
    done
    if [ "$finished" -ne "$clients" ]; then
        log "$finished clients finished but CLIENTS=$clients: set CLIENTS to the number of clients"
        failed=1
    fi

    out=$(taskctl -f "$file" verify --expect "$expect" 2>&1)
    vrc=$?
    printf '%s\n' "$out"
    # Stored = the records taskctl could read ("count: expected N, found M"); what sits in
    # damaged lines of an unlocked run is not stored. Should that line ever change, count
    # the "id" keys instead (a quote inside a string is escaped, so only keys match).
    stored=$(printf '%s\n' "$out" | sed -n 's/^count: expected [0-9]*, found \([0-9]*\).*/\1/p')
    case "$stored" in
    '' | *[!0-9]*) stored=$(grep -o '"id":' "$file" 2>/dev/null | wc -l) ;;
    esac
    if [ "$vrc" -eq 0 ] && [ "$failed" -eq 0 ]; then
        log "verdict: PASS, $stored of $expect tasks stored, each exactly once"
        exit 0
    fi
    log "verdict: FAIL, $stored of $expect tasks stored ($((expect - stored)) lost), taskctl verify exit $vrc"
    exit 1
}

role=${1:-}
[ $# -gt 0 ] && shift
case "$role" in
server) role_server "$@" ;;
client) role_client "$@" ;;
verifier) role_verifier "$@" ;;
*)
    log "usage: taskserver-role server|client|verifier [ARGS...]"
    exit 2
    ;;
esac
