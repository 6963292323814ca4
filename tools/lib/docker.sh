# tools/lib/docker.sh - make Docker usable for the compose and swarm suites: tools, daemon,
# base image, compose v2; and those suites' removal of the images they built.
#
# Sourced (never run) by tools/test before `meson test --suite compose`:
#
#   . "$ROOT/tools/lib/docker.sh"
#   docker_ensure || echo "compose suite will skip: $DOCKER_REASON"
#   docker_ensure_compose_v2 || echo "compose-v2 test will skip: $DOCKER_REASON"
#   ...run the suite...
#   docker_release          # stops dockerd only if docker_ensure started it
#
# docker_ensure = docker_ensure_tools, docker_ensure_daemon, docker_ensure_base_image;
# docker_ensure_compose_v2 is separate (the compose-v1 test does not need it).
# Each returns 0, or 1 with a lower-case reason in DOCKER_REASON (also printed on stderr).
# Nothing here runs unless called: the compose and swarm suites never install or start
# anything, they exit 77 when no daemon answers.
#
# Also sourced by those suites (tests/compose.sh, tests/swarm.sh) for their clean-up, which
# must remove what they built and nothing of anyone else's on a shared daemon:
#
#   images_before=$(docker_labelled_images)    # before the first build
#   ...builds that tag NAME:locked and NAME:unlocked...
#   docker_remove_images NAME "$images_before" LOG || echo "left:$DOCKER_LEFT"  # EXIT trap
#
# Docker is installed on demand, not listed in tools/packages.txt: the packages are large
# and only this suite needs them. The compose files must work with both compose
# implementations, so the suite runs once with each (tests compose-v1 and compose-v2):
#   v1  docker-compose 1.29 (Python): Debian bookworm's `docker-compose` package;
#   v2  the Go rewrite: the `docker compose` plugin, or a standalone binary at
#       $TASKSERVER_COMPOSE_V2. bookworm has no v2 package, so docker_ensure_compose_v2
#       takes Debian trixie's (Debian's own build, from the same archive, signature checked)
#       and unpacks only its binary there; nothing is installed system-wide. It runs as
#       `docker compose` too once copied to ~/.docker/cli-plugins/docker-compose (Docker's
#       place for a user's CLI plugins); we do not do that for the user.
# shellcheck shell=bash

DOCKER_REASON=
DOCKER_STARTED_PID=
DOCKER_LEFT=
DOCKER_BASE_IMAGE=${DOCKER_BASE_IMAGE:-debian:bookworm-slim}
DOCKER_LOG=${DOCKER_LOG:-/tmp/taskserver-dockerd.log}
# dockerd usually answers within a few seconds; the first start initialises /var/lib/docker.
DOCKER_DAEMON_WAIT_S=${DOCKER_DAEMON_WAIT_S:-60}
# Where the standalone compose v2 binary is kept between runs (tests/compose.sh looks here).
TASKSERVER_COMPOSE_V2=${TASKSERVER_COMPOSE_V2:-${XDG_CACHE_HOME:-$HOME/.cache}/taskserver/docker-compose}
# The Debian release whose docker-compose package is v2, and where its archive is.
DEBIAN_V2_SUITE=${DEBIAN_V2_SUITE:-trixie}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

docker__fail() {
    DOCKER_REASON=$1
    echo "docker: $1" >&2
    return 1
}

# The root directory of the checkout, from this file's location.
docker__root() {
    (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
}

# The apt helpers (deps_apt, deps_apt_offers) are deps.sh's: one way to run apt here.
# shellcheck source=tools/lib/deps.sh
. "$(docker__root)/tools/lib/deps.sh"

# docker__apt_install PKG...: installs, updating the package lists first only when apt
# does not offer one of them yet.
docker__apt_install() {
    local pkg
    for pkg in "$@"; do
        deps_apt_offers "$pkg" || {
            deps_apt update -q >&2
            break
        }
    done
    deps_apt install -y -q --no-install-recommends "$@" >&2
}

# 0 when a compose v2 is at hand: the plugin, or the standalone binary we keep.
docker_compose_v2_present() {
    case "$(docker compose version --short 2>/dev/null)" in 2.* | v2.*) return 0 ;; esac
    case "$("$TASKSERVER_COMPOSE_V2" version --short 2>/dev/null)" in 2.* | v2.*) return 0 ;; esac
    return 1
}

# docker__sha256_is FILE SUM: 0 when FILE's SHA-256 is SUM.
docker__sha256_is() {
    [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

# Makes compose v2 available for the compose-v2 test. Ubuntu packages it
# (docker-compose-v2); on Debian bookworm, which does not, the binary comes from Debian
# trixie's docker-compose package: InRelease checked with gpgv against the Debian archive
# keyring, then Packages.xz and the .deb by the SHA-256 sums it signs. Only the binary is
# kept, at $TASKSERVER_COMPOSE_V2. Never fatal for the caller: on failure the compose-v2
# test skips with the reason.
docker_ensure_compose_v2() {
    docker_compose_v2_present && return 0
    if deps_apt_offers docker-compose-v2; then
        echo "docker: installing docker-compose-v2" >&2
        docker__apt_install docker-compose-v2 && docker_compose_v2_present && return 0
    fi
    [ -f /etc/debian_version ] || docker__fail "compose v2: not Debian or Ubuntu, install the docker compose plugin by hand" || return 1
    local tool
    for tool in curl gpgv xz sha256sum dpkg-deb; do
        command -v "$tool" >/dev/null 2>&1 ||
            docker__fail "compose v2: $tool is needed to fetch it from Debian $DEBIAN_V2_SUITE" || return 1
    done
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -r "$keyring" ] || docker__fail "compose v2: no Debian archive keyring at $keyring" || return 1
    local arch dir base sum file
    arch=$(dpkg --print-architecture) ||
        docker__fail "compose v2: dpkg --print-architecture failed" || return 1
    dir=$(mktemp -d /tmp/compose-v2.XXXXXX) || return 1
    base="$DEBIAN_MIRROR/dists/$DEBIAN_V2_SUITE"
    echo "docker: fetching compose v2 from Debian $DEBIAN_V2_SUITE ($DEBIAN_MIRROR)" >&2
    # Each step names what failed; curl's bounds keep a dead mirror from hanging the run.
    local get=(curl -fsS --retry 1 --connect-timeout 20 --max-time 300)
    if ! "${get[@]}" -o "$dir/InRelease" "$base/InRelease"; then
        docker__fail "compose v2: cannot fetch $base/InRelease"
    elif ! gpgv --quiet --keyring "$keyring" --output "$dir/Release" "$dir/InRelease" 2>"$dir/gpgv.log"; then
        docker__fail "compose v2: bad signature on $base/InRelease: $(tail -n 1 "$dir/gpgv.log")"
    elif ! sum=$(awk -v f="main/binary-$arch/Packages.xz" '/^SHA256:/ { s = 1; next }
            /^[^ ]/ { s = 0 } s && $3 == f { print $1; exit }' "$dir/Release") || [ -z "$sum" ]; then
        docker__fail "compose v2: no main/binary-$arch/Packages.xz in $base/Release"
    elif ! "${get[@]}" -o "$dir/Packages.xz" "$base/main/binary-$arch/Packages.xz" ||
        ! docker__sha256_is "$dir/Packages.xz" "$sum"; then
        docker__fail "compose v2: cannot fetch or check $base/main/binary-$arch/Packages.xz"
    elif ! read -r file sum < <(xz -dc "$dir/Packages.xz" | awk '
            /^Package: / { p = ($2 == "docker-compose"); v = f = s = "" }
            p && /^Version: / { v = $2 } p && /^Filename: / { f = $2 } p && /^SHA256: / { s = $2 }
            p && /^$/ && v ~ /^2\./ && f != "" { print f, s; exit }') || [ -z "$sum" ]; then
        docker__fail "compose v2: no docker-compose 2.x for $arch in Debian $DEBIAN_V2_SUITE"
    elif ! "${get[@]}" -o "$dir/compose.deb" "$DEBIAN_MIRROR/$file" ||
        ! docker__sha256_is "$dir/compose.deb" "$sum"; then
        docker__fail "compose v2: cannot fetch or check $DEBIAN_MIRROR/$file"
    elif ! dpkg-deb -x "$dir/compose.deb" "$dir/x" ||
        ! mkdir -p "$(dirname "$TASKSERVER_COMPOSE_V2")" ||
        ! install -m 755 "$dir/x/usr/libexec/docker/cli-plugins/docker-compose" "$TASKSERVER_COMPOSE_V2"; then
        docker__fail "compose v2: cannot unpack $file into $TASKSERVER_COMPOSE_V2"
    elif ! docker_compose_v2_present; then
        docker__fail "compose v2: $TASKSERVER_COMPOSE_V2 does not run"
    else
        echo "docker: compose v2 is $TASKSERVER_COMPOSE_V2 ($("$TASKSERVER_COMPOSE_V2" version --short))" >&2
        rm -rf "$dir"
        return 0
    fi
    rm -rf "$dir"
    return 1
}

# 0 when a Docker daemon answers within a few seconds.
docker_daemon_answers() {
    command -v docker >/dev/null 2>&1 || return 1
    timeout 20 docker info >/dev/null 2>&1
}

# Installs docker.io (dockerd and a client) when missing, and docker-compose 1.29 for the
# compose-v1 test. A docker client alone (some images ship a static one) is not enough: we
# need a daemon to start. Without docker-compose only the compose-v1 test skips.
docker_ensure_tools() {
    if ! command -v docker >/dev/null 2>&1 ||
        { ! command -v dockerd >/dev/null 2>&1 && ! docker_daemon_answers; }; then
        echo "docker: installing docker.io" >&2
        docker__apt_install docker.io || docker__fail "cannot install docker.io with apt-get" || return 1
    fi
    if ! command -v docker-compose >/dev/null 2>&1; then
        echo "docker: installing docker-compose" >&2
        docker__apt_install docker-compose ||
            echo "docker: cannot install docker-compose with apt-get: the compose-v1 test will skip" >&2
    fi
    return 0
}

# Starts dockerd in its own session when no daemon answers, and waits for it (bounded).
docker_ensure_daemon() {
    docker_daemon_answers && return 0
    command -v dockerd >/dev/null 2>&1 || docker__fail "no docker daemon answers and dockerd is not installed" || return 1
    [ "$(id -u)" -eq 0 ] || docker__fail "no docker daemon answers and only root can start dockerd" || return 1
    echo "docker: starting dockerd (log $DOCKER_LOG)" >&2
    # setsid: the daemon must not share our process group, or a Ctrl-C of tools/test
    # would kill it half-way through tearing down containers.
    setsid dockerd >"$DOCKER_LOG" 2>&1 </dev/null &
    DOCKER_STARTED_PID=$!
    local i
    for ((i = 0; i < DOCKER_DAEMON_WAIT_S; i++)); do
        docker_daemon_answers && return 0
        if ! kill -0 "$DOCKER_STARTED_PID" 2>/dev/null; then
            DOCKER_STARTED_PID=
            docker__fail "dockerd exited at start (see $DOCKER_LOG: $(tail -n 1 "$DOCKER_LOG"))"
            return 1
        fi
        sleep 1
    done
    docker__fail "dockerd did not answer within ${DOCKER_DAEMON_WAIT_S} s (see $DOCKER_LOG)"
}

# Makes the Dockerfile's base image available: present, pulled, or built offline.
docker_ensure_base_image() {
    docker image inspect "$DOCKER_BASE_IMAGE" >/dev/null 2>&1 && return 0
    # A registry that cannot be reached makes pull fail fast or hang on DNS: bound it.
    if timeout 60 docker pull "$DOCKER_BASE_IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    echo "docker: cannot pull $DOCKER_BASE_IMAGE, building it offline" >&2
    "$(docker__root)/tools/offline-base-image" "$DOCKER_BASE_IMAGE" ||
        docker__fail "cannot build the offline base image $DOCKER_BASE_IMAGE"
}

docker_ensure() {
    # shellcheck disable=SC2034 # read by the caller
    DOCKER_REASON=
    docker_ensure_tools && docker_ensure_daemon && docker_ensure_base_image
}

# Stops the daemon docker_ensure started (and only that one), waiting for it to exit.
docker_release() {
    [ -n "$DOCKER_STARTED_PID" ] || return 0
    kill -TERM "$DOCKER_STARTED_PID" 2>/dev/null
    local i
    for ((i = 0; i < 30; i++)); do
        kill -0 "$DOCKER_STARTED_PID" 2>/dev/null || break
        sleep 1
    done
    DOCKER_STARTED_PID=
}

# Images our Dockerfile labelled that no tag holds: the classic builder's build stages
# (io.taskserver.stage=build), and runtime images (io.taskserver.locking) left untagged when
# a tag moved: compose v2 builds one image per service (it labels each with the service),
# so all but the last lose the shared tag; a suite may move a tag itself. One full id a line,
# sorted, for comm(1).
docker_labelled_images() {
    {
        docker images -a -q --no-trunc --filter label=io.taskserver.stage=build
        docker images -q --no-trunc --filter dangling=true --filter label=io.taskserver.locking
    } | sort -u
}

# docker_remove_images NAME BEFORE LOG: removes the images NAME:locked and NAME:unlocked,
# and the labelled images (docker_labelled_images) that are not in BEFORE, the list taken
# before the suite built anything; docker's output goes to LOG. Returns 1 when some are left,
# named in DOCKER_LEFT (" ID ID ..."), else 0 with DOCKER_LEFT empty.
docker_remove_images() {
    local name=$1 before=$2 log=$3 id
    DOCKER_LEFT=
    for id in "$name:locked" "$name:unlocked"; do
        if docker image inspect "$id" >/dev/null 2>&1; then
            docker rmi -f "$id" >>"$log" 2>&1 || DOCKER_LEFT="$DOCKER_LEFT $id"
        fi
    done
    for id in $(comm -13 <(echo "$before") <(docker_labelled_images)); do
        docker rmi "$id" >>"$log" 2>&1 ||
            { docker image inspect "$id" >/dev/null 2>&1 && DOCKER_LEFT="$DOCKER_LEFT $id"; }
    done
    [ -z "$DOCKER_LEFT" ]
}
