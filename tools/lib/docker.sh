# tools/lib/docker.sh - make Docker usable for the compose suite: tools, daemon, base image.
#
# Sourced (never run) by tools/test before `meson test --suite compose`:
#
#   . "$ROOT/tools/lib/docker.sh"
#   docker_ensure || echo "compose suite will skip: $DOCKER_REASON"
#   ...run the suite...
#   docker_release          # stops dockerd only if docker_ensure started it
#
# docker_ensure = docker_ensure_tools, docker_ensure_daemon, docker_ensure_base_image.
# Each returns 0, or 1 with a lower-case reason in DOCKER_REASON (also printed on stderr).
# Nothing here runs unless called: the compose suite itself never installs or starts
# anything, it exits 77 when no daemon answers.
#
# Docker is installed on demand, not listed in tools/packages.txt: the packages are large
# and only this suite needs them. Debian has docker-compose 1.29 (Python) and no compose v2
# plugin; docker_compose_cmd picks whichever is present, v2 first.

DOCKER_REASON=
DOCKER_STARTED_PID=
DOCKER_BASE_IMAGE=${DOCKER_BASE_IMAGE:-debian:bookworm-slim}
DOCKER_LOG=${DOCKER_LOG:-/tmp/taskserver-dockerd.log}
# dockerd usually answers within a few seconds; the first start initialises /var/lib/docker.
DOCKER_DAEMON_WAIT_S=${DOCKER_DAEMON_WAIT_S:-60}

docker__fail() {
    DOCKER_REASON=$1
    echo "docker: $1" >&2
    return 1
}

# The root directory of the checkout, from this file's location.
docker__root() {
    (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
}

# Run as root, or through sudo when there is one.
docker__as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        return 1
    fi
}

docker__apt_install() {
    # The dpkg lock timeout rides out a concurrent apt run instead of failing at once.
    docker__as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
        -y -q install --no-install-recommends "$@" >&2 && return 0
    docker__as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
        -q update >&2 || return 1
    docker__as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
        -y -q install --no-install-recommends "$@" >&2
}

# Prints the compose command, v2 plugin first: "docker compose" or "docker-compose".
docker_compose_cmd() {
    if docker compose version >/dev/null 2>&1; then
        echo "docker compose"
    elif command -v docker-compose >/dev/null 2>&1; then
        echo "docker-compose"
    else
        return 1
    fi
}

# 0 when a Docker daemon answers within a few seconds.
docker_daemon_answers() {
    command -v docker >/dev/null 2>&1 || return 1
    timeout 20 docker info >/dev/null 2>&1
}

# Installs docker.io (dockerd and a client) and docker-compose when missing. A docker
# client alone (some images ship a static one) is not enough: we need a daemon to start.
docker_ensure_tools() {
    local want=()
    if ! command -v docker >/dev/null 2>&1 ||
        { ! command -v dockerd >/dev/null 2>&1 && ! docker_daemon_answers; }; then
        want+=(docker.io)
    fi
    docker_compose_cmd >/dev/null || want+=(docker-compose)
    [ ${#want[@]} -eq 0 ] && return 0
    echo "docker: installing ${want[*]}" >&2
    docker__apt_install "${want[@]}" ||
        docker__fail "cannot install ${want[*]} with apt-get"
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
