#!/usr/bin/env bash
# tests/compose.sh - the Docker image and the compose runs, for real: locked, unlocked, scaled.
#
# meson suite `compose`, run twice: COMPOSE_IMPL=v1 (test compose-v1: docker-compose 1.29)
# and COMPOSE_IMPL=v2 (test compose-v2: the `docker compose` plugin, or the standalone v2
# binary at $TASKSERVER_COMPOSE_V2), since the files must work with both. Needs a Docker
# daemon that answers and that compose; without them it exits 77 with the reason. It never
# installs or starts anything: tools/test does that first (tools/lib/docker.sh).
#
# Each run gets its own compose project (-p), so the suite can run next to anything else;
# on exit (also on Ctrl-C) it takes each project down with the files it ran with
# (`down -v --rmi local`: containers, networks, volume, the images compose tagged) and
# removes the build-stage images the classic builder left untagged, found by the label
# our Dockerfile puts on them (io.taskserver.stage=build); nothing unlabelled, which on a
# shared daemon may be another build's. The base image stays. What stays of the build
# cache depends on the builder: BuildKit (compose v2) keeps all of it; with the classic
# builder (docker-compose 1.29) `docker rmi` also removes the build stage's untagged
# parent layers (unless another image still uses them), so the next run compiles again.
#
# Checks, each with its exact expectation:
#   - the documented command `up --build --exit-code-from verifier` exits 0 and the
#     verifier reports 200 of 200 tasks stored; the server ran as non-root with a read-only
#     root, no capabilities, no-new-privileges, no published port, on an internal network;
#   - the same with compose.nolock.yaml exits non-zero and the verifier reports the losses;
#   - compose.scale.yaml with CLIENTS=3 TASKS=40: exit 0, 120 of 120, 3 clients; run with
#     compose.expose.yaml too, so that during it GET /health must answer on the published
#     127.0.0.1:EXPOSE_PORT (a free port), and the server's only port binding is that one;
#   - from the merged configuration (`config`, nothing built): compose.expose.yaml
#     publishes 9000 on 127.0.0.1 by default; LOCKING=false with compose.nolock.yaml and
#     compose.scale.yaml builds every service unlocked.
set -u

ROOT=${SOURCE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
BASE_IMAGE=${DOCKER_BASE_IMAGE:-debian:bookworm-slim}
RUN_TIMEOUT_S=${COMPOSE_RUN_TIMEOUT_S:-900}

skip() {
    echo "compose: skipped: $*" >&2
    exit 77
}

# The suite builds both variants in Docker itself: running it again from the unlocked
# build directory would only repeat the same work.
[ "${LOCKING:-1}" = 1 ] || skip "LOCKING=0: the suite builds both variants in Docker, it runs from the locked build only"
command -v docker >/dev/null 2>&1 || skip "docker is not installed (tools/test installs it)"
timeout 20 docker info >/dev/null 2>&1 ||
    skip "no docker daemon answers (tools/test starts one: tools/lib/docker.sh)"
# v2: the plugin, else the standalone binary tools/lib/docker.sh keeps; v1: docker-compose
# only if it is 1.x (Debian trixie's docker-compose is a v2).
v2_bin=${TASKSERVER_COMPOSE_V2:-${XDG_CACHE_HOME:-$HOME/.cache}/taskserver/docker-compose}
major() { # major COMMAND...: the major version of a compose command, or nothing
    "$@" version --short 2>/dev/null | sed -n 's/^v\{0,1\}\([0-9]*\)\..*/\1/p'
}
case "${COMPOSE_IMPL:-}" in
v1)
    [ "$(major docker-compose)" = 1 ] ||
        skip "docker-compose 1.x is not installed (Debian bookworm's docker-compose; tools/test installs it)"
    compose=(docker-compose)
    ;;
v2)
    if [ "$(major docker compose)" = 2 ]; then
        compose=(docker compose)
    elif [ "$(major "$v2_bin")" = 2 ]; then
        compose=("$v2_bin")
    else
        skip "no compose v2: neither the 'docker compose' plugin nor $v2_bin (tools/test fetches it)"
    fi
    ;;
*)
    echo "compose: COMPOSE_IMPL must be v1 or v2, not '${COMPOSE_IMPL:-}'" >&2
    exit 2
    ;;
esac
docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 ||
    skip "base image $BASE_IMAGE is missing and no registry may be reachable (tools/offline-base-image builds it)"

# The knobs the compose files read: fixed here, whatever the caller's environment holds.
export TASKS=100 CONCURRENCY=100 WORKERS=4
unset CLIENTS RACE_WINDOW_US LOCKING EXPOSE_PORT
export COMPOSE_INTERACTIVE_NO_CLI=1

work=$(mktemp -d /tmp/compose-test.XXXXXX) || exit 1
tag=tstest$$$(date +%s)
projects=()
declare -A files_of # project -> its compose files, one per line, as it ran
failures=0

# The classic builder's build-stage images: untagged, labelled by our Dockerfile.
build_stage_images() {
    docker images -a -q --no-trunc --filter label=io.taskserver.stage=build | sort -u
}
images_before=$(build_stage_images)

cleanup() {
    local p f files=() id left=
    for p in "${projects[@]}"; do
        files=()
        while IFS= read -r f; do
            [ -n "$f" ] && files+=(-f "$ROOT/compose/$f")
        done <<<"${files_of[$p]:-compose.yaml}"
        timeout 300 "${compose[@]}" -p "$p" "${files[@]}" \
            down -v --rmi local --remove-orphans -t 2 >>"$work/down.log" 2>&1 ||
            echo "compose: cleanup of project $p failed (see $work/down.log)" >&2
    done
    for id in $(comm -13 <(echo "$images_before") <(build_stage_images)); do
        docker rmi "$id" >>"$work/down.log" 2>&1 || left="$left $id"
    done
    [ -z "$left" ] || echo "compose: could not remove build-stage images:$left" >&2
    rm -rf "$work"
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

# now_s: seconds since the epoch, for the timings printed at the end.
now_s() {
    date +%s
}

# run_compose NAME EXPECT_RC_KIND FILES... : the documented one-command run in project
# $tag-NAME, output in $work/NAME.log; sets rc and elapsed.
run_compose() {
    local name=$1
    shift
    local p="${tag}${name}" files=() f
    [ -n "${files_of[$p]+set}" ] || projects+=("$p")
    files_of[$p]=$(printf '%s\n' "$@")
    for f in "$@"; do
        files+=(-f "$ROOT/compose/$f")
    done
    local t0
    t0=$(now_s)
    timeout "$RUN_TIMEOUT_S" "${compose[@]}" -p "$p" "${files[@]}" --ansi never \
        up --build --exit-code-from verifier >"$work/$name.log" 2>&1 </dev/null
    rc=$?
    elapsed=$(($(now_s) - t0))
    project=$p
    project_files=("${files[@]}")
    [ "$rc" -ne 124 ] || fail "$name: the run did not finish within $RUN_TIMEOUT_S s"
}

# The verifier's verdict, without compose's "verifier_1  | " prefix.
verdict_line() {
    grep -a 'taskserver-role: verdict:' "$work/$1.log" | tail -n 1 | sed 's/^.*taskserver-role: verdict:/verdict:/'
}

show_log() {
    echo "---- last 40 lines of the $1 run ----" >&2
    tail -n 40 "$work/$1.log" >&2
}

# The server container of the current project: settings that must hold in every run.
check_server_container() {
    local name=$1 id
    id=$("${compose[@]}" -p "$project" "${project_files[@]}" ps -a -q server 2>/dev/null | head -n 1)
    if [ -z "$id" ]; then
        fail "$name: no server container to inspect"
        return
    fi
    local got
    got=$(docker inspect -f '{{.Config.User}}|{{.HostConfig.ReadonlyRootfs}}|{{.HostConfig.CapDrop}}|{{.HostConfig.SecurityOpt}}|{{len .HostConfig.PortBindings}}' "$id")
    local want='10001:10001|true|[ALL]|[no-new-privileges:true]|0'
    if [ "$got" = "$want" ]; then
        pass "$name: server user, read-only root, caps, no published port"
    else
        fail "$name: server settings: expected '$want', got '$got'"
    fi
    local net internal
    net=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$id")
    net=${net% }
    internal=$(docker network inspect -f '{{.Internal}}' "$net" 2>/dev/null)
    if [ "$net" = "${project}_ticsnet" ] && [ "$internal" = true ]; then
        pass "$name: server only on the internal network $net"
    else
        fail "$name: server networks: expected '${project}_ticsnet' internal, got '$net' internal=$internal"
    fi
}

# check_locking_label NAME true|false: the server ran the build variant the run asked for.
check_locking_label() {
    local id got
    id=$("${compose[@]}" -p "$project" "${project_files[@]}" ps -a -q server 2>/dev/null | head -n 1)
    got=$(docker inspect -f '{{index .Config.Labels "io.taskserver.locking"}}' "$id" 2>&1)
    if [ "$got" = "$2" ]; then
        pass "$1: server image built with LOCKING=$2"
    else
        fail "$1: server image label io.taskserver.locking: expected '$2', got '$got'"
    fi
}

echo "compose: using ${compose[*]} ($("${compose[@]}" version --short 2>/dev/null)), docker $(docker version -f '{{.Server.Version}}')"

# ---- the image, built once for the locked run (the later runs hit the cache) ----
t0=$(now_s)
projects+=("${tag}locked")
files_of[${tag}locked]=compose.yaml
# docker-compose 1.29 builds with the classic builder, which keeps the container of a failed
# step unless told otherwise.
build_opts=()
[ "$COMPOSE_IMPL" = v1 ] && build_opts=(--force-rm)
if timeout "$RUN_TIMEOUT_S" "${compose[@]}" -p "${tag}locked" -f "$ROOT/compose/compose.yaml" \
    build "${build_opts[@]}" >"$work/build.log" 2>&1 </dev/null; then
    build_s=$(($(now_s) - t0))
    pass "image built in $build_s s"
else
    build_s=$(($(now_s) - t0))
    tail -n 40 "$work/build.log" >&2
    fail "compose build failed after $build_s s"
    exit 1
fi

# ---- locked: exit 0, 200 of 200 ----
run_compose locked compose.yaml
locked_s=$elapsed
v=$(verdict_line locked)
if [ "$rc" -eq 0 ] && [ "$v" = "verdict: PASS, 200 of 200 tasks stored, each exactly once" ]; then
    pass "locked run: exit 0, '$v' ($locked_s s)"
else
    show_log locked
    fail "locked run: expected exit 0 and 'PASS, 200 of 200', got exit $rc and '$v'"
fi
if grep -aq 'client client1 finished with exit status 0' "$work/locked.log" &&
    grep -aq 'client client2 finished with exit status 0' "$work/locked.log"; then
    pass "locked run: both clients exit 0"
else
    fail "locked run: expected client1 and client2 to finish with exit status 0"
fi
check_server_container locked
check_locking_label locked true

# The data lives on the project's named volume, owned by the image's user.
vol="${project}_data"
if docker volume inspect "$vol" >/dev/null 2>&1; then
    pass "locked run: data on named volume $vol"
else
    fail "locked run: named volume $vol not found"
fi

# ---- unlocked with a race window: non-zero, losses reported ----
run_compose nolock compose.yaml compose.nolock.yaml
nolock_s=$elapsed
v=$(verdict_line nolock)
if [ "$rc" -ne 0 ] && [[ "$v" =~ ^verdict:\ FAIL,\ ([0-9]+)\ of\ 200\ tasks\ stored\ \(([0-9]+)\ lost\) ]] &&
    [ "${BASH_REMATCH[1]}" -lt 200 ] && [ "${BASH_REMATCH[2]}" -gt 0 ]; then
    pass "unlocked run: exit $rc, '$v' ($nolock_s s)"
else
    show_log nolock
    fail "unlocked run: expected a non-zero exit and 'FAIL, N of 200 tasks stored (M lost)' with M > 0, got exit $rc and '$v'"
fi
check_locking_label nolock false

# ---- scaled, with the API published: CLIENTS=3 TASKS=40 -> 120, and 127.0.0.1 answers ----
# The expose override rides along on this run instead of costing one of its own: while
# the run goes, a prober on the host asks GET /health on the published port until it
# answers (bounded by the run: it is stopped when `up` returns).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
probe_health() { # probe_health PORT OUT: "ok" into OUT once GET /health answers 200
    local ce=${CLIENTEMULATOR:-$ROOT/build/src/clientemulator} _
    for _ in $(seq 1 $((RUN_TIMEOUT_S * 5))); do
        if [ -x "$ce" ]; then
            "$ce" --health --quiet --timeout 1 --url "http://127.0.0.1:$1" >/dev/null 2>&1 &&
                { echo ok >"$2"; return 0; }
        elif curl -sf -m 1 "http://127.0.0.1:$1/health" >/dev/null 2>&1; then
            echo ok >"$2"
            return 0
        fi
        sleep 0.2
    done
}
export CLIENTS=3 TASKS=40
EXPOSE_PORT=$(free_port) || EXPOSE_PORT=
export EXPOSE_PORT
if [ -n "$EXPOSE_PORT" ]; then
    probe_health "$EXPOSE_PORT" "$work/expose.probe" &
    prober=$!
    run_compose scale compose.yaml compose.scale.yaml compose.expose.yaml
    kill "$prober" 2>/dev/null
    wait "$prober" 2>/dev/null
else
    fail "expose: no free port on 127.0.0.1 for EXPOSE_PORT"
    run_compose scale compose.yaml compose.scale.yaml
fi
scale_s=$elapsed
v=$(verdict_line scale)
n=$(grep -ac 'finished with exit status 0' "$work/scale.log")
if [ "$rc" -eq 0 ] && [ "$n" -eq 3 ] &&
    [ "$v" = "verdict: PASS, 120 of 120 tasks stored, each exactly once" ]; then
    pass "scaled run: 3 clients, exit 0, '$v' ($scale_s s)"
else
    show_log scale
    fail "scaled run: expected exit 0, 3 clients and 'PASS, 120 of 120', got exit $rc, $n clients and '$v'"
fi
if [ -n "$EXPOSE_PORT" ]; then
    if [ "$(cat "$work/expose.probe" 2>/dev/null)" = ok ]; then
        pass "expose override: GET /health answered on 127.0.0.1:$EXPOSE_PORT during the run"
    else
        fail "expose override: GET /health never answered on 127.0.0.1:$EXPOSE_PORT during the run"
    fi
    id=$("${compose[@]}" -p "$project" "${project_files[@]}" ps -a -q server 2>/dev/null | head -n 1)
    # shellcheck disable=SC2016 # Go template variables, not the shell's
    fmt='{{range $p, $b := .HostConfig.PortBindings}}{{$p}}='
    # shellcheck disable=SC2016
    fmt+='{{range $b}}{{.HostIp}}:{{.HostPort}} {{end}}{{end}}'
    got=$(docker inspect -f "$fmt" "$id" 2>&1)
    want="9000/tcp=127.0.0.1:$EXPOSE_PORT "
    if [ "$got" = "$want" ]; then
        pass "expose override: the server's only binding is 9000/tcp on 127.0.0.1:$EXPOSE_PORT"
    else
        fail "expose override: port bindings: expected '$want', got '$got'"
    fi
fi
export TASKS=100
unset CLIENTS EXPOSE_PORT

# ---- from the merged configuration only (`config` builds and runs nothing) ----
ports=$("${compose[@]}" -p "${tag}expose" -f "$ROOT/compose/compose.yaml" \
    -f "$ROOT/compose/compose.expose.yaml" config 2>&1 | grep -A4 '^ *ports:' | tr -d ' \n')
case "$ports" in
*127.0.0.1*9000*) pass "expose override publishes 9000 on 127.0.0.1 by default ($ports)" ;;
*) fail "expose override: expected 127.0.0.1:9000 in ports, got '$ports'" ;;
esac
# The scale file's `client` is not named in compose.nolock.yaml: LOCKING=false must reach it.
# One "SERVICE=VALUE" line per service that builds: its LOCKING build argument, or "none".
args=$(LOCKING=false CLIENTS=2 "${compose[@]}" -p "${tag}cfg" -f "$ROOT/compose/compose.yaml" \
    -f "$ROOT/compose/compose.nolock.yaml" -f "$ROOT/compose/compose.scale.yaml" config 2>&1 |
    awk '/^[^ ]/ { in_services = ($0 == "services:") }
        in_services && /^  [^ ]+:$/ { flush(); svc = $1; sub(/:$/, "", svc); builds = 0; v = "none" }
        in_services && /^    build:/ { builds = 1 }
        in_services && /^ +LOCKING:/ { v = $2; gsub(/"/, "", v) }
        function flush() { if (svc != "" && builds) print svc "=" v; svc = "" }
        END { flush() }')
if grep -qx 'client=false' <<<"$args" && ! grep -qv '=false$' <<<"$args"; then
    pass "LOCKING=false with nolock + scale: every build is unlocked ($(tr '\n' ' ' <<<"$args"))"
else
    fail "LOCKING=false with nolock + scale: expected client and every other build false, got '$(tr '\n' ' ' <<<"$args")'"
fi

echo "timings: build $build_s s, locked run $locked_s s, unlocked run $nolock_s s, scaled run $scale_s s"
if [ "$failures" -ne 0 ]; then
    echo "compose: $failures check(s) failed" >&2
    exit 1
fi
echo "compose: all checks passed"
