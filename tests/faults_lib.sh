# faults_lib.sh - helpers of the fault suite on top of lib.sh: store checks, CPU time, sockets, mounts.
#
# Usage, after lib.sh:
#
#     . "$(dirname "$0")/lib.sh"
#     . "$(dirname "$0")/faults_lib.sh"
#     faults_init                     # e2e_init, the helper programs, the mount-aware trap
#     fl_load DIR -c 8 -d 10000 &     # fault_load on $PORT; its summary in DIR/load.out
#     fl_check_store FILE DIR         # every task acknowledged in DIR stored exactly once
#
# Every wait is bounded. Mounts made through fl_mount_tmpfs are lazily
# unmounted by the EXIT trap before lib.sh's cleanup kills and removes.

# shellcheck shell=bash
FL_MOUNTS=""

faults_init() {
    e2e_init
    local v
    for v in RAW_HTTP FAULT_LOAD FAULT_LOCKHOLDER FAULT_STALL FAULT_KILL TASKCTL; do
        [ -n "${!v}" ] || skip "$v is not set (run through meson test)"
        [ -x "${!v}" ] || skip "$v=${!v} is not an executable"
    done
    trap fl_cleanup EXIT
}

# fl_cleanup [STATUS]: the EXIT trap (STATUS: the exit status, when a wrapping trap ran
# commands first).
fl_cleanup() {
    local rc=${1:-$?} m
    # Lazy: a server still holding the file open must not keep the mount
    # alive, and lib.sh's rm -rf must never walk into a mounted file system.
    for m in $FL_MOUNTS; do
        umount -l "$m" 2>/dev/null
    done
    e2e_cleanup "$rc"
}

# fl_mount_tmpfs DIR SIZE: a tmpfs of SIZE on DIR; returns 1 if mount fails.
fl_mount_tmpfs() {
    mkdir -p "$1" || return 1
    mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" 2>"$E2E_DIR/mount.err" || return 1
    FL_MOUNTS="$FL_MOUNTS $1"
}

# fl_need_locking WHY: skip in a build without locks.
fl_need_locking() {
    [ "$LOCKING" = 1 ] || skip "LOCKING=0 build: $*"
}

# fl_workers: the master's children (the workers), sorted, space-separated.
fl_workers() {
    children_of "$SERVER_PID" | sort -n | tr '\n' ' ' | sed 's/ $//'
}

# fl_workers_back N: waits up to 5 s until the master has N workers again; prints their
# pids as fl_workers does (whatever there are at the end).
fl_workers_back() {
    local now i
    for i in $(seq 1 50); do
        now=$(fl_workers)
        [ "$(echo "$now" | wc -w)" -eq "$1" ] && break
        sleep 0.1
    done
    echo "$now"
}

# fl_cpu_ticks PID: user + system CPU time of PID in clock ticks (-1 if gone).
fl_cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo -1
}

# fl_cpu_sum PIDS...: the sum of fl_cpu_ticks.
fl_cpu_sum() {
    local p t=0
    for p in "$@"; do
        t=$((t + $(fl_cpu_ticks "$p")))
    done
    echo "$t"
}

# fl_established PORT: server-side TCP connections in ESTABLISHED state on
# 127.0.0.1:PORT (accepted or waiting in the backlog), from /proc/net/tcp.
fl_established() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" '$2 ~ p"$" && $4 == "01" { n++ } END { print n + 0 }' /proc/net/tcp
}

# fl_established_ge PORT N: succeeds once fl_established PORT is at least N
# (a command for wait_until, which must re-evaluate it on every poll).
fl_established_ge() {
    [ "$(fl_established "$1")" -ge "$2" ]
}

# fl_unsent_ge PORT N: succeeds once the server's side of its connections on PORT holds
# at least N bytes the client has not taken (a stalled reader; for wait_until).
fl_unsent_ge() {
    local unsent
    read -r _ _ unsent <<<"$(tcp_port_stats "$1")"
    [ "$unsent" -ge "$2" ]
}

# fl_watch_close PORT SECONDS: prints the ms from now until the server has no
# ESTABLISHED connection left on PORT (polled every 20 ms), or nothing after SECONDS.
fl_watch_close() {
    local t0 end
    t0=$(now_ms)
    end=$((t0 + $2 * 1000))
    while [ "$(now_ms)" -lt "$end" ]; do
        if [ "$(fl_established "$1")" -eq 0 ]; then
            echo $(($(now_ms) - t0))
            return 0
        fi
        sleep 0.02
    done
}

# fl_fds PID: open descriptors of PID; fl_fds_ge PID N: at least N (for wait_until).
fl_fds() {
    find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}
fl_fds_ge() {
    [ "$(fl_fds "$1")" -ge "$2" ]
}

# fl_acked_ge DIR N: the load in DIR has N 201s (for wait_until).
fl_acked_ge() {
    [ "$(fl_acked "$1")" -ge "$2" ]
}

# fl_answers STATUS CURL-ARGS...: succeeds if the request gets STATUS.
fl_answers() {
    local want=$1
    shift
    [ "$(http_status "$@")" = "$want" ]
}

# fl_field LINE NAME: the value of NAME=VALUE in a summary line (empty if absent).
fl_field() {
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}

# fl_status_count STATUSES CODE: N from "201:N,503:M" (0 if absent).
fl_status_count() {
    local n
    n=$(printf '%s\n' "$1" | tr ',' '\n' | sed -n "s/^$2://p" | head -1)
    echo "${n:-0}"
}

# fl_load DIR ARGS...: fault_load on $PORT writing its acks into DIR; the
# summary line goes to DIR/load.out, errors to DIR/load.err.
fl_load() {
    local dir=$1
    shift
    mkdir -p "$dir"
    "$FAULT_LOAD" -p "$PORT" -o "$dir" "$@" >"$dir/load.out" 2>"$dir/load.err"
}

# fl_acked DIR: how many 201s the load recorded.
fl_acked() {
    cat "$1"/ack.* 2>/dev/null | grep -c .
}

# fl_task_count FILE: tasks in a JSON array file (-1 if it is not one).
fl_task_count() {
    python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$1" 2>/dev/null ||
        echo -1
}

# fl_check_store DESC FILE ACKDIR [EXPECT-COUNT]: a check. The file is a JSON
# array with one record per line between "[" and "]", ids 1..n in order, no
# cliente+seq stored twice, and every task acknowledged with 201 (files
# ACKDIR/ack.CLIENTE, one seq per line) stored. Seq gaps are legitimate: a
# request that failed may or may not have been stored.
fl_check_store() {
    local desc=$1 out
    if out=$(python3 "$(dirname "${BASH_SOURCE[0]}")/check_store.py" "$2" "$3" "${4:-}" 2>&1); then
        pass "$desc: $out"
    else
        fail "$desc: $out"
    fi
}

# fl_check_canonical FILE: taskctl's start-up check finds nothing to repair.
fl_check_canonical() {
    local out
    out=$("$TASKCTL" -f "$1" check 2>&1)
    check_match "taskctl check $1: canonical (nothing to repair)" "canonical" "$out"
}

# fl_dump_log [LINES]: the tail of the current server log, for a failure.
fl_dump_log() {
    [ -n "$SERVER_LOG" ] && tail -"${1:-20}" "$SERVER_LOG" | sed 's/^/    server: /' >&2
}

# fl_time_ms COMMAND...: runs it; its output in FL_OUT, exit status in FL_RC,
# wall time in FL_MS (read by faults.sh).
# shellcheck disable=SC2034
fl_time_ms() {
    local t0
    t0=$(now_ms)
    FL_OUT=$("$@" 2>&1)
    FL_RC=$?
    FL_MS=$(($(now_ms) - t0))
}
