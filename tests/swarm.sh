#!/usr/bin/env bash
# tests/swarm.sh - server replicas on Docker Swarm sharing one file, through tools/stack-run.
#
# meson suite `swarm`. Needs a Docker daemon that answers, the base image, and a node that is
# in no swarm or a swarm manager; otherwise it exits 77 with the reason. It never installs or
# starts Docker (tools/test does, tools/lib/docker.sh).
#
#   locked    tools/stack-run --replicas 3 --clients 3 --tasks 200: exit 0; sent, acknowledged
#             and stored 600, lost 0; every replica (server-1, -2, -3) stored a share > 0;
#             stack-run removed the stack, its network and its volume
#   unlocked  the same with --no-locking: exit 1, a FAIL verdict, the servers' locking=false,
#             lost > 0 (the clients' exact count); cleaned up the same way
#   usage     a bad flag: exit 2, nothing deployed
#
# Names of its own (stack tstswarm-PID-..., image tstswarmPID...img), so it never touches a
# stack or an image of someone else's on a shared daemon. If the node is in no swarm, the
# suite makes one for both runs (stack-run then leaves it alone) and leaves it at the end;
# on any exit, a failure or Ctrl-C included, it removes every stack, network and volume of
# its own names, the images it tagged, the build-stage images its builds left (labelled by
# our Dockerfile, not there before), and the swarm it made (with docker_gwbridge, which
# `swarm leave` keeps).
set -u

ROOT=${SOURCE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=tools/lib/docker.sh
. "$ROOT/tools/lib/docker.sh" || exit 1
BASE_IMAGE=${DOCKER_BASE_IMAGE:-debian:bookworm-slim}
RUN_TIMEOUT_S=${SWARM_RUN_TIMEOUT_S:-900}

skip() {
    echo "swarm: skipped: $*" >&2
    exit 77
}

[ "${LOCKING:-1}" = 1 ] ||
    skip "LOCKING=0: the suite builds both variants in Docker, it runs from the locked build only"
command -v docker >/dev/null 2>&1 || skip "docker is not installed (tools/test installs it)"
timeout 20 docker info >/dev/null 2>&1 ||
    skip "no docker daemon answers (tools/test starts one: tools/lib/docker.sh)"
docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 ||
    skip "base image $BASE_IMAGE is missing and no registry may be reachable" \
        "(tools/offline-base-image builds it)"
state=$(docker info -f '{{.Swarm.LocalNodeState}}' 2>/dev/null)
case "$state" in
inactive) ;;
active)
    [ "$(docker info -f '{{.Swarm.ControlAvailable}}' 2>/dev/null)" = true ] ||
        skip "this node is a swarm worker: stacks deploy from a manager"
    ;;
*) skip "this node's swarm state is '$state'" ;;
esac

work=$(mktemp -d /tmp/swarm-test.XXXXXX) || exit 1
tag=tstswarm$$$(date +%s)
IMAGE=${tag}img
stacks=()
made_swarm=0
gwbridge_before=0
failures=0

images_before=$(docker_labelled_images)

# gone STACK: nothing of the stack is left (services, containers, network, volume).
gone() {
    [ -z "$(docker service ls -q --filter "label=com.docker.stack.namespace=$1" 2>/dev/null)" ] &&
        [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$1" 2>/dev/null)" ] &&
        ! docker network inspect "$1_ticsnet" >/dev/null 2>&1 &&
        ! docker volume inspect "$1_data" >/dev/null 2>&1
}

cleanup() {
    local rc=$? s left='' _
    for s in "${stacks[@]}"; do
        gone "$s" && continue
        timeout 60 docker stack rm "$s" >>"$work/down.log" 2>&1
        for _ in $(seq 1 120); do
            [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$s")" ] && break
            sleep 0.5
        done
        for _ in $(seq 1 20); do
            docker network rm "${s}_ticsnet" >>"$work/down.log" 2>&1
            docker volume rm "${s}_data" >>"$work/down.log" 2>&1
            gone "$s" && break
            sleep 0.5
        done
        gone "$s" || left="$left stack:$s"
    done
    docker_remove_images "$IMAGE" "$images_before" "$work/down.log" || left="$left$DOCKER_LEFT"
    if [ "$made_swarm" = 1 ]; then
        timeout 60 docker swarm leave --force >>"$work/down.log" 2>&1 || left="$left swarm"
        if [ "$gwbridge_before" = 0 ] &&
            docker network inspect docker_gwbridge >/dev/null 2>&1; then
            docker network rm docker_gwbridge >>"$work/down.log" 2>&1 ||
                left="$left docker_gwbridge"
        fi
    fi
    if [ -n "$left" ]; then
        echo "swarm: could not remove:$left (see below)" >&2
        tail -n 20 "$work/down.log" >&2
        [ "$rc" = 0 ] && rc=1
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

pass() {
    echo "ok: $*"
}

if [ "$state" = inactive ]; then
    docker network inspect docker_gwbridge >/dev/null 2>&1 && gwbridge_before=1
    docker swarm init --advertise-addr 127.0.0.1 >"$work/init.log" 2>&1 ||
        skip "docker swarm init --advertise-addr 127.0.0.1 failed: $(tail -n 1 "$work/init.log")"
    made_swarm=1
fi

# stack_run NAME LOG ARGS...: tools/stack-run as STACK NAME with our image; exit status in RC.
stack_run() {
    local s=$1 log=$2
    shift 2
    stacks+=("$s")
    timeout $((RUN_TIMEOUT_S + 120)) "$ROOT/tools/stack-run" --name "$s" --image "$IMAGE" \
        --timeout "$RUN_TIMEOUT_S" "$@" >"$log" 2>&1 </dev/null
    RC=$?
}

# line LOG PREFIX: the last line of LOG starting with PREFIX, without it.
line() {
    grep -a "^$2" "$1" | tail -n 1 | sed "s/^$2//"
}

show_log() {
    echo "---- last 60 lines of $1 ----" >&2
    tail -n 60 "$1" >&2
}

echo "swarm: docker $(docker version -f '{{.Server.Version}}'), swarm $state" \
    "$([ "$made_swarm" = 1 ] && echo "(made here)")"

# ---- usage: nothing deployed ----
"$ROOT/tools/stack-run" --replicas 0 >"$work/usage.log" 2>&1
rc=$?
if [ "$rc" = 2 ]; then
    pass "stack-run --replicas 0: exit 2"
else
    fail "stack-run --replicas 0: expected exit 2, got $rc: $(cat "$work/usage.log")"
fi

# ---- locked: 3 replicas x 3 clients x 200 ----
S=${tag}-locked
t0=$(date +%s)
stack_run "$S" "$work/locked.log" --replicas 3 --clients 3 --tasks 200
locked_s=$(($(date +%s) - t0))
sent=$(line "$work/locked.log" 'stack-run: sent ')
share=$(line "$work/locked.log" 'stack-run: share: ')
if [ "$RC" = 0 ] && [ "$sent" = "600, acknowledged 600, stored 600, lost 0" ]; then
    pass "locked: exit 0, sent $sent"
else
    show_log "$work/locked.log"
    fail "locked: expected exit 0 and 'sent 600, acknowledged 600, stored 600, lost 0'," \
        "got exit $RC and 'sent $sent'"
fi
# "server-1 201 (33.5%), server-2 ...": every replica stored a share > 0.
for r in 1 2 3; do
    n=$(printf '%s\n' "$share" | tr ',' '\n' | sed -n "s/^ *server-$r \([0-9]*\) .*/\1/p")
    if [ -n "$n" ] && [ "$n" -gt 0 ]; then
        pass "locked: replica server-$r stored $n tasks"
    else
        fail "locked: replica server-$r stored no task (share: '$share')"
    fi
done
grep -aq '^stack-run: servers: 3 replicas, 4 workers each' "$work/locked.log" ||
    fail "locked: the verdict does not say '3 replicas, 4 workers each'"
if gone "$S"; then
    pass "locked: stack-run removed the stack, its network and its volume"
else
    fail "locked: something of stack $S is left after stack-run"
fi

# ---- unlocked: the same, tasks get lost ----
S=${tag}-unlocked
t0=$(date +%s)
stack_run "$S" "$work/unlocked.log" --replicas 3 --clients 3 --tasks 200 --no-locking
unlocked_s=$(($(date +%s) - t0))
sent=$(line "$work/unlocked.log" 'stack-run: sent ')
lost=$(printf '%s\n' "$sent" | sed -n 's/.*, lost \([0-9]*\)$/\1/p')
# Exit 1, a FAIL verdict of the unlocked servers, and lost > 0 as an exact count: each client
# checks its 201s in the file itself (clientemulator --verify-file), which it can read even
# when the replicas refuse to serve the damaged list.
if [ "$RC" = 1 ] && grep -aq '^stack-run: verdict: FAIL' "$work/unlocked.log" &&
    grep -aq '^stack-run: servers: .*locking=false' "$work/unlocked.log" &&
    [[ "$lost" =~ ^[0-9]+$ ]] && [ "$lost" -gt 0 ]; then
    pass "unlocked: exit 1, sent $sent"
else
    show_log "$work/unlocked.log"
    fail "unlocked: expected exit 1, a FAIL verdict of servers with locking=false and an exact" \
        "count of lost tasks > 0, got exit $RC and 'sent $sent'"
fi
if gone "$S"; then
    pass "unlocked: stack-run removed the stack, its network and its volume"
else
    fail "unlocked: something of stack $S is left after stack-run"
fi

echo "figures: locked sent $(line "$work/locked.log" 'stack-run: sent ');" \
    "share $(line "$work/locked.log" 'stack-run: share: ')"
echo "figures: unlocked sent $sent; share $(line "$work/unlocked.log" 'stack-run: share: ')"
echo "timings: locked $locked_s s, unlocked $unlocked_s s (each with its image build)"
if [ "$failures" -ne 0 ]; then
    echo "swarm: $failures check(s) failed" >&2
    exit 1
fi
echo "swarm: all checks passed"
