#!/usr/bin/env bash
# bench/classroom.sh - measures every claim docs/clase.md makes about the classroom in containers.
#
#   bench/classroom.sh [--runs N] [--compose v1|v2] [SETTING...]
#
# SETTING: locked (compose.yaml), unlocked (compose.nolock.yaml, its default race window),
# unlocked0 (the same with RACE_WINDOW_US=0: the bare race), unlocked-all (the default
# window, INTERVAL_MS=0: each client sends all its tasks at once, the earlier classroom).
# Default: the first three, 20 runs each. Each run is a whole classroom round from compose/: `up -d`, the verifier's verdict,
# then the file itself read on the host (python3): records readable line by line, ids seen
# twice, whether json.load reads it. For the unlocked settings the server is started anew
# each run (`down` then `up -d`): its list is emptied at start (FRESH_START).
#
# Prints one line per run and, per setting, how many runs showed each thing the guide
# claims: a FAIL verdict, lost acknowledged tasks (and how many), duplicate ids, a file
# that is not valid JSON, acknowledged < sent, and the switches between the two clients
# (min / median / max). Runs by hand, never from meson test: about 20 s a run.
# It uses names of its own (project, container, images) and removes them at the end.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ME=bench/classroom.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
RUNS=20
IMPL=v1
SETTINGS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) RUNS=${2:?}; shift 2 ;;
    --compose) IMPL=${2:?}; shift 2 ;;
    -h | --help) bench_help; exit 0 ;;
    locked | unlocked | unlocked0 | unlocked-all) SETTINGS+=("$1"); shift ;;
    -*) bench_usage_error "unknown option $1" ;;
    *) bench_usage_error "unknown setting '$1'" ;;
    esac
done
[ ${#SETTINGS[@]} -gt 0 ] || SETTINGS=(locked unlocked unlocked0)
case "$IMPL" in
v1) compose=(docker-compose) ;;
v2) compose=("${TASKSERVER_COMPOSE_V2:-${XDG_CACHE_HOME:-$HOME/.cache}/taskserver/docker-compose}") ;;
*) echo "classroom.sh: --compose v1 or v2" >&2; exit 2 ;;
esac

P=tsbench$$
export TASKSERVER_IMAGE=$P SERVER_CONTAINER=$P-server TASKS=100 CONCURRENCY=100 WORKERS=4
unset CLIENTS COMPOSE_PROJECT_NAME INTERVAL_MS BURST
OUT=$(mktemp -d /tmp/bench-classroom.XXXXXX)
dc() { (cd "$ROOT/compose" && "${compose[@]}" -p "$P" "$@"); }
cleanup() {
    dc -f compose.yaml -f compose.nolock.yaml down -v -t 2 >/dev/null 2>&1
    docker rmi -f "$P:locked" "$P:unlocked" >/dev/null 2>&1
    # compose v2 builds one image per service, labelled with the project: all but the last
    # lose the tag.
    docker images -q --filter dangling=true --filter "label=com.docker.compose.project=$P" |
        xargs -r docker rmi >/dev/null 2>&1
    rm -rf "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# analyse FILE: "records dup_ids valid" for the list in FILE.
analyse() {
    python3 - "$1" <<'PY'
import collections, json, sys
data = open(sys.argv[1], "rb").read()
ids, records = collections.Counter(), 0
for line in data.splitlines():
    line = line.strip().rstrip(b",")
    if not line.startswith(b"{"):
        continue
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    if isinstance(rec, dict):
        records += 1
        ids[rec.get("id")] += 1
try:
    json.loads(data)
    valid = "yes"
except ValueError:
    valid = "no"
print(records, sum(n - 1 for n in ids.values()), valid)
PY
}

echo "classroom measurement: ${compose[*]} ($("${compose[@]}" version --short)), $RUNS runs per setting," \
    "$(nproc) cores, $(date -u +%Y-%m-%d)"
for setting in "${SETTINGS[@]}"; do
    files=(-f compose.yaml)
    path=tasks.json
    unset RACE_WINDOW_US INTERVAL_MS
    case "$setting" in
    unlocked) files+=(-f compose.nolock.yaml); path=unlocked/tasks.json ;;
    unlocked0) files+=(-f compose.nolock.yaml); path=unlocked/tasks.json; export RACE_WINDOW_US=0 ;;
    unlocked-all) files+=(-f compose.nolock.yaml); path=unlocked/tasks.json; export INTERVAL_MS=0 ;;
    esac
    dc "${files[@]}" down -v -t 2 >/dev/null 2>&1
    echo "== $setting: ${files[*]}${RACE_WINDOW_US+ RACE_WINDOW_US=$RACE_WINDOW_US}${INTERVAL_MS+ INTERVAL_MS=$INTERVAL_MS}"
    printf '%-4s %-5s %5s %5s %6s %5s %5s %6s %8s\n' run exit sent acked stored lost dups valid switches
    rows=()
    for run in $(seq 1 "$RUNS"); do
        [ "$setting" = locked ] || dc "${files[@]}" down -t 2 >/dev/null 2>&1
        if ! dc "${files[@]}" up --build -d >"$OUT/up.log" 2>&1; then
            tail -n 20 "$OUT/up.log" >&2
            echo "classroom.sh: up failed in run $run of $setting" >&2
            exit 1
        fi
        rc=$(timeout 600 docker wait "$(dc "${files[@]}" ps -q verifier | head -n 1)")
        log=$(dc "${files[@]}" logs --no-color verifier 2>&1)
        block=$(awk '/verifier: run [0-9]+:/ { b = "" } { b = b $0 "\n" } END { printf "%s", b }' <<<"$log")
        sent=$(sed -n 's/.*verifier: sent \([0-9]*\), acknowledged (201) \([0-9]*\), stored \([0-9]*\).*/\1 \2 \3/p' <<<"$block")
        read -r s a st <<<"$sent"
        lost=$(sed -n 's/.*verdict: FAIL, .* \([0-9]*\) of them lost.*/\1/p' <<<"$block")
        sw=$(sed -n 's/.*verifier: interleaving: \([0-9]*\) switches.*/\1/p' <<<"$block")
        docker exec "$SERVER_CONTAINER" cat "$path" >"$OUT/tasks.json" 2>/dev/null
        read -r _recs dups valid <<<"$(analyse "$OUT/tasks.json")"
        printf '%-4s %-5s %5s %5s %6s %5s %5s %6s %8s\n' "$run" "$rc" "${s:-?}" "${a:-?}" \
            "${st:-?}" "${lost:-0}" "$dups" "$valid" "${sw:-?}"
        rows+=("$rc ${s:-0} ${a:-0} ${st:-0} ${lost:-0} $dups $valid ${sw:-0}")
    done
    printf '%s\n' "${rows[@]}" | awk -v setting="$setting" -v runs="$RUNS" '
        { n++; if ($1 != 0) fail++; if ($5 > 0) { lossy++; lost += $5; l[lossy] = $5 }
          if ($6 > 0) dup++; if ($7 == "no") broken++; if ($3 < $2) short++; sw[n] = $8 }
        END {
            asort_n(sw, n); asort_n(l, lossy)
            printf "summary %s: %d runs: FAIL verdict %d/%d; lost acknowledged tasks in %d/%d", setting, n, fail, n, lossy, n
            if (lossy) printf " (median %d, range %d..%d per run)", l[int((lossy + 1) / 2)], l[1], l[lossy]
            printf "; duplicate ids %d/%d; file not valid JSON %d/%d; acknowledged < sent %d/%d;", dup, n, broken, n, short, n
            printf " switches min %d, median %d, max %d\n", sw[1], sw[int((n + 1) / 2)], sw[n]
        }
        function asort_n(a, k,   i, j, t) { for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t } }'
done
