# Dockerfile - one small, unprivileged image for every role of the distributed run.
#
#   docker build -t taskserver:locked .                  locked build (default)
#   docker build --build-arg LOCKING=false -t taskserver:unlocked .
#   docker run --rm -v tasks:/data -p 127.0.0.1:9000:9000 taskserver:locked
#
# Tag each build by its variant (compose/ does: taskserver:locked, taskserver:unlocked), so
# that an old unlocked image never passes for the locked one; the label io.taskserver.locking
# and `taskserver --version` say which build an image holds.
#
# By default the container runs taskserver on port 9000 with its file in /data (the only
# place it writes: mount a named volume there). compose/ overrides the command for the
# clients and the verifier. Works with the classic builder and BuildKit alike, and offline:
# the base image can be made locally by tools/offline-base-image.

# A pinned tag; override it to build on a mirror or a local copy.
ARG BASE=debian:bookworm-slim

# ---- build: compile the three programs with meson from Debian packages ----
FROM ${BASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        gcc libc6-dev meson ninja-build pkg-config libcjson-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# true: fcntl record locks on tasks.json; false: the unlocked build that loses tasks.
# Declared after the apt layers: a RUN after an ARG misses the cache when the ARG changes,
# and both variants should share the packages.
ARG LOCKING=true
# Only the programs: -Dtests=false needs neither check nor the test sources.
RUN case "$LOCKING" in true|false) ;; \
        *) echo "LOCKING must be true or false, not '$LOCKING'" >&2; exit 1;; esac \
 && meson setup /build -Dlocking="$LOCKING" -Dtests=false \
 && ninja -C /build src/taskserver src/taskctl src/clientemulator \
 && mkdir -p /out \
 && cp /build/src/taskserver /build/src/taskctl /build/src/clientemulator /out/ \
 && strip /out/* \
 && install -m 0755 compose/role.sh /out/taskserver-role
# Marks the (untagged) build-stage image, so the compose test can remove what it built.
LABEL io.taskserver.stage=build

# ---- runtime: the binaries, their runtime libraries, and ps ----
FROM ${BASE}
# procps: `docker exec taskserver ps aux` shows the master and its workers by title.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libcjson1 libcurl4 procps \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && groupadd --system --gid 10001 taskserver \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin taskserver \
 && mkdir /data \
 && chown 10001:10001 /data \
 && chmod 0750 /data
COPY --from=build /out/ /usr/local/bin/
ARG LOCKING=true
LABEL org.opencontainers.image.title="taskserver" \
      org.opencontainers.image.description="pre-forking HTTP/1.1 task server, its client emulator and taskctl" \
      io.taskserver.locking="${LOCKING}"
# A new named volume is initialised from this directory, owner included: so the
# unprivileged user can write it without a chown at start (which would need root).
# `docker exec -it taskserver bash` starts here: `cat tasks.json` shows the list.
VOLUME /data
WORKDIR /data
USER 10001:10001
ENV TASKSERVER_FILE=/data/tasks.json \
    TASKSERVER_PORT=9000
EXPOSE 9000
# Our own client asks GET /health: no curl or wget in the image. 127.0.0.1, not localhost,
# so the check does not depend on the resolver or on IPv6.
HEALTHCHECK --interval=2s --timeout=3s --start-period=20s --retries=3 \
    CMD ["clientemulator", "--health", "--url", "http://127.0.0.1:9000"]
CMD ["taskserver", "--file", "/data/tasks.json"]
