#!/bin/bash
# e2e_taskctl.sh - taskctl end to end: every command and exit code, round trips, verify, repair,
# reset, concurrent adds and the interactive menu, on files in a temporary directory.
#
# Environment (set by meson): TASKCTL (the binary), LOCKING (1 or 0), SOURCE_ROOT.
# Exit 0 when every check passed, 1 otherwise (each failure printed with expected and got).
set -u

: "${TASKCTL:?TASKCTL must name the taskctl binary}"
LOCKING=${LOCKING:-1}
SOURCE_ROOT=${SOURCE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
unset TASKS_FILE COLUMNS

# Scratch files under the build dir, removed on every exit (meson's SIGTERM included).
SCRATCH=${TMPDIR:-/tmp}
[ -n "${BUILD_ROOT:-}" ] && mkdir -p "$BUILD_ROOT/test-tmp" 2>/dev/null && SCRATCH=$BUILD_ROOT/test-tmp
TMP=$(mktemp -d "$SCRATCH/e2e_taskctl.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'echo "interrupted by a signal: cleaning up" >&2; exit 130' INT TERM
cd "$TMP" || exit 1

failures=0
checks=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# run CMD...: runs it with stdin from /dev/null; sets rc, and out/err files.
run() {
    "$@" </dev/null >"$TMP/out" 2>"$TMP/err"
    rc=$?
    # In a sanitizer build, a report fails the test whatever the exit status.
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$TMP/err"; then
        fail "$*: sanitizer report: $(head -c 2000 "$TMP/err")"
    fi
}

# expect_rc WANT CMD...: runs CMD and checks its exit status.
expect_rc() {
    local want=$1
    shift
    checks=$((checks + 1))
    run "$@"
    if [ "$rc" != "$want" ]; then
        fail "$* -> exit $rc, expected $want; stdout: $(head -c 600 "$TMP/out"); stderr: $(cat "$TMP/err")"
    fi
}

# expect_out TEXT / expect_err TEXT: the last run's stdout / stderr contains TEXT.
expect_out() {
    checks=$((checks + 1))
    grep -qF -- "$1" "$TMP/out" || fail "stdout lacks '$1'; got: $(head -c 1500 "$TMP/out")"
}
expect_err() {
    checks=$((checks + 1))
    grep -qF -- "$1" "$TMP/err" || fail "stderr lacks '$1'; got: $(cat "$TMP/err")"
}

# expect_one_error_line PREFIX: stderr is exactly one line starting "taskctl: " (the
# unlocked build's warning line aside).
expect_one_error_line() {
    checks=$((checks + 1))
    local lines
    lines=$(grep -v 'WARNING: built with -Dlocking=false' "$TMP/err")
    if [ "$(printf '%s\n' "$lines" | wc -l)" != 1 ] || [ "${lines#taskctl: }" = "$lines" ]; then
        fail "expected one 'taskctl: ' error line, got: $lines"
    fi
}

same_file() { # same_file A B: byte for byte
    checks=$((checks + 1))
    cmp -s "$1" "$2" || fail "$1 differs from $2: $(cmp "$1" "$2" 2>&1)"
}

sum() { md5sum <"$1" | cut -d' ' -f1; }

T=$TASKCTL

# ---- version and help ----
expect_rc 0 "$T" --version
expect_out "taskctl 0.1.0"
if [ "$LOCKING" = 1 ]; then expect_out "locking on"; else expect_out "locking OFF"; fi
expect_rc 0 "$T" -V
expect_rc 0 "$T" --help
expect_out "usage: taskctl"
expect_out "exit status: 0 ok, 1 verification failed, 2 usage error, 3 file error"
for c in add list verify check repair reset help; do
    expect_rc 0 "$T" "$c" --help
    expect_out "usage: taskctl"
    expect_out "$c"
    expect_rc 0 "$T" help "$c"
    expect_out "usage: taskctl"
done
expect_rc 0 "$T" help
expect_out "commands:"
[ -e tasks.json ] && fail "--help created tasks.json"

# ---- usage errors: exit 2, one line naming the argument ----
expect_rc 2 "$T" frobnicate;                   expect_err '"frobnicate"'; expect_one_error_line
expect_rc 2 "$T" --frob list;                  expect_err '--frob';       expect_one_error_line
expect_rc 2 "$T" -f;                           expect_err '--file';       expect_one_error_line
expect_rc 2 "$T";                              expect_err 'no command';   expect_one_error_line
expect_rc 2 "$T" add;                          expect_err 'no TITULO';    expect_one_error_line
expect_rc 2 "$T" add --frob x;                 expect_err '--frob';       expect_one_error_line
expect_rc 2 "$T" add --seq abc x;              expect_err '"abc"';        expect_one_error_line
expect_rc 2 "$T" add --seq -1 x;               expect_err '"-1"';         expect_one_error_line
expect_rc 2 "$T" add --cliente;                expect_err '--cliente';    expect_one_error_line
expect_rc 2 "$T" list extra;                   expect_err '"extra"';      expect_one_error_line
expect_rc 2 "$T" list --frob;                  expect_err '--frob';       expect_one_error_line
expect_rc 2 "$T" verify --expect;              expect_err '--expect';     expect_one_error_line
expect_rc 2 "$T" verify --expect 12x;          expect_err '"12x"';        expect_one_error_line
expect_rc 2 "$T" verify --expect=-3;           expect_err '"-3"';         expect_one_error_line
expect_rc 2 "$T" check now;                    expect_err '"now"';        expect_one_error_line
expect_rc 2 "$T" repair --force;               expect_err '--force';      expect_one_error_line
expect_rc 2 "$T" reset all;                    expect_err '"all"';        expect_one_error_line
expect_rc 2 "$T" help frobnicate;              expect_err '"frobnicate"'; expect_one_error_line
expect_rc 2 "$T" -f "";                        expect_err '--file needs a non-empty path'; expect_one_error_line
expect_rc 2 "$T" list --file=;                 expect_err 'list: --file needs a non-empty path'
expect_one_error_line
expect_rc 2 "$T" verify extra;                 expect_err '"extra"';      expect_one_error_line
expect_rc 2 "$T" add --seq 9007199254740991 a b
expect_err "the last task's seq would pass 9007199254740991"; expect_one_error_line
expect_rc 2 "$T" timeline;                     expect_err 'no DIR given'; expect_one_error_line
expect_rc 2 "$T" timeline -o '' tr;            expect_err '--output needs a non-empty path'
expect_one_error_line
expect_rc 2 "$T" timeline --frob;              expect_err '--frob';       expect_one_error_line
expect_rc 2 "$T" timeline tr more;             expect_err '"more"';       expect_one_error_line
expect_rc 2 "$T" timeline --html --text tr;    expect_err '--html with --text needs -o FILE'
expect_one_error_line
[ -e tasks.json ] && fail "a usage error created tasks.json"

# ---- timeline: what cannot be read or written, exit 3 naming it ----
mkdir -p "$TMP/tr" "$TMP/tr_empty"
printf '# taskserver-trace 1 pid=1 worker=0 locking=on max_events=9\n5 response status=200\n# end events=1\n' \
    >"$TMP/tr/worker-1.trace"
expect_rc 3 "$T" timeline "$TMP/no_such_dir";  expect_err "open directory $TMP/no_such_dir: No such file"
expect_one_error_line
expect_rc 3 "$T" timeline "$TMP/tr_empty";     expect_err 'no *.trace files'; expect_one_error_line
expect_rc 3 "$T" timeline "$TMP/tr" -o "$TMP/no/x.svg"
expect_err "timeline: open $TMP/no/x.svg: No such file"; expect_one_error_line
if [ -w /dev/full ]; then
    expect_rc 3 "$T" timeline "$TMP/tr" -o /dev/full
    expect_err 'timeline: write /dev/full: No space left on device'; expect_one_error_line
    checks=$((checks + 1))
    "$T" timeline --text "$TMP/tr" >/dev/full 2>"$TMP/err"
    rc=$?
    [ "$rc" = 3 ] || fail "timeline --text >/dev/full -> exit $rc, expected 3"
    expect_err 'write to stdout: No space left on device'
fi
expect_rc 0 "$T" timeline --text "$TMP/tr";    expect_out 'trace: 1 workers, locking on, 1 events'
expect_rc 0 "$T" -f "$TMP/few.json" add uno
if [ -w /dev/full ]; then
    checks=$((checks + 1))
    "$T" -f "$TMP/few.json" list >/dev/full 2>"$TMP/err"
    rc=$?
    [ "$rc" = 3 ] || fail "list >/dev/full -> exit $rc, expected 3"
    expect_err 'write to stdout: No space left on device'
fi
# A record line damaged in the middle (the tail is intact, so the file opens): list shows
# the others and names the line, exit 3.
expect_rc 0 "$T" -f "$TMP/few.json" add dos tres
sed -i '3s/.*/{"id":2,"titulo":"dos" BROKEN},/' "$TMP/few.json"
expect_rc 3 "$T" -f "$TMP/few.json" list
expect_err "$TMP/few.json: line 3 (byte "; expect_err "): record: invalid JSON at byte "
expect_out "2 tasks"; expect_out " tres"
expect_rc 0 "$T" reset --fsync -f"$TMP/few.json"; expect_out "reset $TMP/few.json: the list is empty"
expect_rc 0 "$T" -f "$TMP/few.json" verify --expect 0

# ---- file errors: exit 3, one line naming the file ----
nodir="$TMP/no/such/dir/tasks.json"
for c in "add x" list "list --json" verify check repair reset; do
    # shellcheck disable=SC2086
    expect_rc 3 "$T" -f "$nodir" $c; expect_err "$nodir"; expect_one_error_line
done
expect_rc 3 "$T" -f missing.json list;         expect_err missing.json
expect_rc 3 "$T" -f missing.json verify;       expect_err missing.json
expect_rc 3 "$T" -f missing.json check;        expect_err missing.json
[ -e missing.json ] && fail "list, verify or check created missing.json"
mkdir adir
expect_rc 3 "$T" -f adir verify;               expect_err adir
expect_rc 3 "$T" -f adir list;                 expect_err adir
expect_rc 3 "$T" -f adir add x;                expect_err adir

# ---- default file: ./tasks.json, else $TASKS_FILE, else -f ----
expect_rc 0 "$T" add "en el directorio"
expect_out "added task 1: en el directorio"
[ -f tasks.json ] || fail "add did not create ./tasks.json"
expect_rc 0 env TASKS_FILE="$TMP/env.json" "$T" add "por entorno"
[ -f env.json ] || fail "add did not use \$TASKS_FILE"
expect_rc 0 env TASKS_FILE="$TMP/env.json" "$T" -f other.json add "por opcion"
[ -f other.json ] || fail "-f did not override \$TASKS_FILE"
expect_rc 0 "$T" list -f env.json
expect_out "por entorno"
expect_rc 0 "$T" verify --expect 1 --file=env.json

# ---- add / list / list --json round trip with special characters ----
titles=(
    'comillas "dobles" y \"escapadas\"'
    'barra \ invertida \\ doble'
    $'nueva\nlinea y\ttab y \r retorno'
    'emoji 😀🎉 y acentos: camión, ñandú'
    'corchete ] y [ llaves }{'
    '"},{"id":999'
    $'separador de linea U+2028 \xe2\x80\xa8 fin'
    '-empieza con guion'
)
expect_rc 0 "$T" -f rt.json add --cliente 'cli "1"' --descripcion $'desc\\ "x"\n]' --seq 1 -- "${titles[@]}"
checks=$((checks + 1))
[ "$(grep -c '^added task ' "$TMP/out")" = "${#titles[@]}" ] ||
    fail "add printed $(grep -c '^added task ' "$TMP/out") 'added task' lines, expected ${#titles[@]}"
expect_out "added task 8: -empieza con guion"
expect_rc 0 "$T" -f rt.json list --json
same_file "$TMP/out" rt.json
cp "$TMP/out" rt-list.json
checks=$((checks + 1))
python3 - rt-list.json "${titles[@]}" <<'PY' || fail "list --json round trip (see above)"
import json, sys
tasks = json.load(open(sys.argv[1], encoding="utf-8"))
want = sys.argv[2:]
got = [t["titulo"] for t in tasks]
ok = got == want
ok &= [t["id"] for t in tasks] == list(range(1, len(want) + 1))
ok &= all(t["cliente"] == 'cli "1"' and t["descripcion"] == 'desc\\ "x"\n]' for t in tasks)
ok &= [t["seq"] for t in tasks] == list(range(1, len(want) + 1))
ok &= all(isinstance(t["pid"], int) and t["creada"].endswith("Z") for t in tasks)
if not ok:
    print("round trip: expected titulos %r\ngot %r" % (want, tasks), file=sys.stderr)
    sys.exit(1)
PY
expect_rc 0 env COLUMNS=200 "$T" -f rt.json list
expect_out 'nueva\nlinea y\ttab y \r retorno'
expect_out '"},{"id":999'
expect_out "${#titles[@]} tasks"
checks=$((checks + 1))
[ "$(wc -l <"$TMP/out")" = $((${#titles[@]} + 2)) ] ||
    fail "list: $(wc -l <"$TMP/out") lines, expected $((${#titles[@]} + 2)) (header, one per task, count)"
expect_rc 0 "$T" -f rt.json verify --expect ${#titles[@]}
expect_out "verdict: OK"

# The table fits 80 columns (not a terminal, no COLUMNS), long titles cut with "...".
long=$(printf 'x%.0s' $(seq 1 300))
expect_rc 0 "$T" -f wide.json add "$long" corto
expect_rc 0 "$T" -f wide.json list
checks=$((checks + 1))
awk 'length($0) > 80 { bad = 1 } END { exit bad }' "$TMP/out" || fail "list wider than 80 columns"
expect_out "..."
expect_out "corto"
expect_rc 0 env COLUMNS=120 "$T" -f wide.json list
checks=$((checks + 1))
[ "$(awk '{ if (length($0) > m) m = length($0) } END { print m }' "$TMP/out")" = 120 ] ||
    fail "COLUMNS=120: widest line is not 120 columns"

# ---- add validation: stops at the first invalid titulo, keeps the ones before ----
expect_rc 2 "$T" -f val.json add uno dos "" tres
expect_err "TITULO 3 of 4"
expect_err "titulo"
expect_err "2 tasks added before it"
expect_one_error_line
expect_rc 0 "$T" -f val.json verify --expect 2
expect_rc 2 "$T" -f val.json add ok $'mal \xff\xfe utf8'
expect_err "TITULO 2 of 2"
expect_err "UTF-8"
expect_err "1 task added before it"
expect_rc 2 "$T" -f val.json add "$(printf 'a%.0s' $(seq 1 1025))"
expect_err "titulo"
expect_err "0 tasks added before it"
expect_rc 0 "$T" -f val.json add "$(printf 'a%.0s' $(seq 1 1024))"
expect_rc 2 "$T" -f val.json add --cliente "$(printf 'c%.0s' $(seq 1 129))" x
expect_err "cliente"
expect_rc 2 "$T" -f val.json add --descripcion "$(printf 'd%.0s' $(seq 1 4097))" x
expect_err "descripcion"
expect_rc 0 "$T" -f val.json verify --expect 4

# ---- verify: good file, --expect mismatch, gaps, duplicates, ids ----
rec() { # rec ID CLIENTE SEQ: one canonical record line
    printf '{"id":%s,"titulo":"t%s","cliente":"%s","seq":%s,"creada":"2026-11-26T15:00:00Z","pid":1}' "$1" "$1" "$2" "$3"
}
write_file() { # write_file FILE RECORD...: the canonical layout around the records
    local f=$1 i
    shift
    {
        printf '[\n'
        for ((i = 1; i <= $#; i++)); do
            printf '%s' "${!i}"
            [ "$i" -lt $# ] && printf ','
            printf '\n'
        done
        printf ']\n'
    } >"$f"
}
write_file good.json "$(rec 1 a 1)" "$(rec 2 b 1)" "$(rec 3 a 2)" "$(rec 4 b 2)" "$(rec 5 a 3)"
expect_rc 0 "$T" -f good.json verify
expect_out "verdict: OK: 5 tasks"
expect_out "ids: unique and increasing"
expect_out "seq: 2 clientes with seq, 2 complete"
expect_rc 0 "$T" -f good.json verify --expect 5
expect_out "count: expected 5, found 5"
expect_rc 1 "$T" -f good.json verify --expect 6
expect_out "count: expected 6, found 5"
expect_out "verdict: FAILED: count"
expect_rc 0 "$T" -f good.json check
expect_out "canonical, 5 tasks"

# Who stored what: "host" (the server's host name, beside pid) counted per host among the
# judged records; records written before the field existed have none, and say so.
hrec() { # hrec ID CLIENTE SEQ HOST
    printf '{"id":%s,"titulo":"t%s","cliente":"%s","seq":%s,"creada":"2026-11-26T15:00:00Z","pid":1,"host":"%s"}' "$1" "$1" "$2" "$3" "$4"
}
write_file hosts.json "$(hrec 1 a@run1 1 server-2)" "$(hrec 2 a@run1 2 server-1)" \
    "$(hrec 3 b@run1 1 server-2)" "$(rec 4 a@run1 3)" "$(hrec 5 x 1 server-3)"
expect_rc 0 "$T" -f hosts.json verify --cliente '*@run1' --expect 4
expect_out "hosts: 2 stored the 4 judged records (1 of them name no host: written before records did)"
expect_out "host server-1: 1 (25.0%)"
expect_out "host server-2: 2 (50.0%)"
checks=$((checks + 1))
! grep -q 'server-3' "$TMP/out" || fail "verify --cliente counted a host of a record it does not judge"
expect_rc 0 "$T" -f good.json verify
checks=$((checks + 1))
! grep -q '^host' "$TMP/out" || fail "verify printed hosts for records that name none"
# A pattern that matches no record (a typo in '*@run1') fails, unless --expect 0 says so.
expect_rc 1 "$T" -f hosts.json verify --cliente '*@rnu1'
expect_out "selected: 0 of 5 records"
expect_out 'no record'"'"'s cliente matches "*@rnu1"'
expect_out "verdict: FAILED: no match"
expect_rc 0 "$T" -f hosts.json verify --cliente '*@rnu1' --expect 0
expect_out "verdict: OK: 0 tasks"
expect_rc 0 env COLUMNS=100 "$T" -f hosts.json list
expect_out "pid  host"
checks=$((checks + 1))
[ "$(grep -c ' 1  server-[123] ' "$TMP/out")" = 4 ] && grep -q ' 1  -  ' "$TMP/out" ||
    fail "list: a host column with server-N (and - where there is none) expected: $(cat "$TMP/out")"
# Written by the store itself: the host it runs on.
expect_rc 0 "$T" -f hostadd.json add "con host"
checks=$((checks + 1))
grep -qF "\"host\":\"$(hostname)\"" hostadd.json ||
    fail "taskctl add did not record the host name $(hostname): $(cat hostadd.json)"

# A "]" in the middle, records after it (what writers without the lock leave): the records
# after it are still counted (a line reader finds them), and the damage is reported.
printf '[\n%s\n]\n%s,\n%s\n]\n' "$(rec 1 a 1)" "$(rec 2 a 2)" "$(rec 3 b 1)" >midclose.json
expect_rc 1 "$T" -f midclose.json verify --expect 3
expect_out 'bytes after the closing "]"'
expect_out "records: 3 readable, ids 1..3"
expect_out "count: expected 3, found 3"
expect_out "verdict: FAILED: damaged"

write_file gap.json "$(rec 1 a 1)" "$(rec 2 a 2)" "$(rec 3 a 4)" "$(rec 4 b 1)" "$(rec 5 a 7)" "$(rec 6 b 3)"
expect_rc 1 "$T" -f gap.json verify
expect_out 'cliente "a": seq 1..7: 3 missing: 3 5 6'
expect_out 'cliente "b": seq 1..3: 1 missing: 2'
expect_out "verdict: FAILED: seq"

write_file dup.json "$(rec 1 a 1)" "$(rec 2 a 2)" "$(rec 3 a 2)" "$(rec 4 a 3)" "$(rec 5 a 2)" "$(rec 6 b 1)" "$(rec 7 b 1)"
expect_rc 1 "$T" -f dup.json verify --expect 7
expect_out 'cliente "a": seq 1..3: 1 doubled (2 extra copies): 2'
expect_out 'cliente "b": seq 1..1: 1 doubled (1 extra copies): 1'
expect_out "count: expected 7, found 7"
expect_out "verdict: FAILED: seq"

# A cliente that only used seq 0, twice: its range starts at 0.
write_file zero.json "$(rec 1 c 0)" "$(rec 2 c 0)"
expect_rc 1 "$T" -f zero.json verify
expect_out 'cliente "c": seq 0..0: 1 doubled (1 extra copies): 0'

# More than 20 missing: the first 20 are listed, then "..."
write_file many.json "$(rec 1 z 1)" "$(rec 2 z 50)"
expect_rc 1 "$T" -f many.json verify
expect_out 'cliente "z": seq 1..50: 48 missing: 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 ...'

write_file ids.json "$(rec 1 a 1)" "$(rec 3 a 2)" "$(rec 3 a 3)" "$(rec 2 a 4)"
expect_rc 1 "$T" -f ids.json verify
expect_out "ids: 2 not greater than the id before them, the first on line 4 (id 3 after id 3)"
expect_out "verdict: FAILED: ids"

# ---- verify on damage: offset and line, readable count, file unchanged ----
write_file mid.json "$(rec 1 a 1)" "$(rec 2 a 2)" "garbage in the middle" "$(rec 4 a 3)" "$(rec 5 a 4)"
off=$(head -n 3 mid.json | wc -c)    # byte offset of line 4
before=$(sum mid.json)
printf '%s\n' * | grep -v '^ls-' >"$TMP/ls-before"
expect_rc 1 "$T" -f mid.json verify --expect 5
expect_out "damage: byte $off, line 4:"
expect_out "records: 4 readable"
expect_out "count: expected 5, found 4"
expect_out "verdict: FAILED: damaged"
expect_rc 1 "$T" -f mid.json check
expect_err "mid.json"
expect_rc 3 "$T" -f mid.json repair
expect_err "mid.json"
expect_err "not modified"
checks=$((checks + 1))
[ "$(sum mid.json)" = "$before" ] || fail "verify, check or repair modified a file damaged in the middle"
printf '%s\n' * | grep -v '^ls-' >"$TMP/ls-after"
same_file "$TMP/ls-before" "$TMP/ls-after"

# A broken record (starts like one): damage inside line 4, the rest still counted.
write_file brk.json "$(rec 1 a 1)" "$(rec 2 a 2)" '{"id":3,"titulo":"t3" "cliente":"a"}' "$(rec 4 a 3)"
off4=$(head -n 3 brk.json | wc -c)
expect_rc 1 "$T" -f brk.json verify
expect_out ", line 4: record is not valid"
expect_out "records: 3 readable"
checks=$((checks + 1))
got_off=$(sed -n 's/^damage: byte \([0-9]*\), line 4:.*/\1/p' "$TMP/out")
{ [ -n "$got_off" ] && [ "$got_off" -ge "$off4" ] && [ "$got_off" -lt $((off4 + 40)) ]; } ||
    fail "broken record: damage offset '$got_off' is not within line 4 (starts at $off4)"

# ---- torn tail: verify and check report it, repair cuts it ----
write_file torn.json "$(rec 1 a 1)" "$(rec 2 a 2)" "$(rec 3 a 3)"
size=$(wc -c <torn.json)
head -c $((size - 25)) torn.json >torn.tmp && cat torn.tmp >torn.json && rm torn.tmp
before=$(sum torn.json)
expect_rc 1 "$T" -f torn.json verify
expect_out "torn tail"
expect_out "records: 2 readable"
expect_rc 1 "$T" -f torn.json check
checks=$((checks + 1))
[ "$(sum torn.json)" = "$before" ] || fail "verify or check modified a torn file"
expect_rc 0 "$T" -f torn.json repair
expect_out "cut a torn tail"
checks=$((checks + 1))
ls torn.json.torn-* >/dev/null 2>&1 || fail "repair did not save the torn tail beside the file"
expect_rc 0 "$T" -f torn.json verify --expect 2
expect_rc 0 "$T" -f torn.json check
expect_rc 0 "$T" -f torn.json repair
expect_out "nothing to repair, 2 tasks"

# ---- repair: "[]" and a pretty-printed file become canonical, originals kept ----
# "[]" (`echo "[]" > tasks.json`, the documented reset) is a valid empty list in another
# layout: verify passes it, notes the layout, and leaves the file alone.
echo "[]" >brackets.json
expect_rc 0 "$T" -f brackets.json verify
expect_out "layout: not the store's"
expect_out "an empty JSON array"
expect_out "verdict: OK: 0 tasks"
expect_rc 0 "$T" -f brackets.json verify --expect 0
expect_rc 1 "$T" -f brackets.json verify --expect 1
expect_out "verdict: FAILED: count"
checks=$((checks + 1))
[ "$(cat brackets.json)" = "[]" ] || fail "verify modified [] into: $(cat brackets.json)"
expect_rc 0 "$T" -f brackets.json repair
expect_out "rewrote an empty list in the canonical layout"
checks=$((checks + 1))
[ "$(cat brackets.json)" = $'[\n]' ] || fail "repair of [] wrote: $(cat brackets.json)"
# An empty list has nothing to lose: no copy of it (a copy per `echo "[]" >` reset is clutter).
! ls brackets.json.orig-* >/dev/null 2>&1 || fail "repair of [] saved a copy of an empty list"
expect_rc 0 "$T" -f brackets.json verify --expect 0
expect_rc 0 "$T" -f brackets.json add "despues de []"
expect_out "added task 1:"

cat >pretty.json <<'JSON'
[
    {
        "titulo": "primera",
        "descripcion": "de python"
    },
    {"id": 7, "titulo": "segunda \"con\" comillas", "cliente": "py", "seq": 1}
]
JSON
# Valid JSON in another layout: verify judges the records the store will hold once it
# rewrites the file (ids 1..n), and says so.
expect_rc 0 "$T" -f pretty.json verify --expect 2
expect_out "layout: not the store's"
expect_out "a JSON array of 2 records (2 of them get a new id)"
expect_out "records: 2 readable, ids 1..2"
expect_out "verdict: OK: 2 tasks"
checks=$((checks + 1))
! grep -q '^damage' "$TMP/out" || fail "verify reported damage in a valid pretty-printed file"
expect_rc 0 "$T" -f pretty.json repair
expect_out "canonical layout, 2 tasks"
ls pretty.json.orig-* >/dev/null 2>&1 || fail "repair of a pretty-printed file did not keep the original"
expect_rc 0 "$T" -f pretty.json verify --expect 2
expect_rc 0 "$T" -f pretty.json list --json
checks=$((checks + 1))
python3 - "$TMP/out" <<'PY' || fail "pretty-printed file after repair (see above)"
import json, sys
t = json.load(open(sys.argv[1]))
want = [(1, "primera"), (2, 'segunda "con" comillas')]
if [(x["id"], x["titulo"]) for x in t] != want or t[0].get("descripcion") != "de python":
    print("expected %r, got %r" % (want, t), file=sys.stderr)
    sys.exit(1)
PY

: >zero.json # 0 bytes: the store reads an empty list
expect_rc 0 "$T" -f zero.json verify --expect 0
expect_out "file is empty (0 bytes)"
expect_rc 0 "$T" -f zero.json add "en un archivo vacio"
expect_out "added task 1: en un archivo vacio"
expect_rc 0 "$T" -f zero.json verify --expect 1

# Other layouts of valid JSON: several records on a line, python3 -m json.tool's output.
printf '[{"titulo":"a"},\n{"titulo":"b"}]\n' >two.json
expect_rc 0 "$T" -f two.json verify
expect_out "a JSON array of 2 records"
expect_out "verdict: OK: 2 tasks"
python3 -m json.tool good.json >pp.json || fail "python3 -m json.tool good.json"
expect_rc 0 "$T" -f pp.json verify --expect 5
expect_out "a JSON array of 5 records (0 of them get a new id)"
expect_out "seq: 2 clientes with seq, 2 complete"
expect_out "verdict: OK: 5 tasks"
# ... still judged: a gap in a cliente's seq fails.
printf '[{"titulo":"a","cliente":"c","seq":1},{"titulo":"b","cliente":"c","seq":3}]\n' >oseq.json
expect_rc 1 "$T" -f oseq.json verify
expect_out 'cliente "c": seq 1..3: 1 missing: 2'
expect_out "verdict: FAILED: seq"
# Real damage in another layout stays damage: a line after "]", a torn end, garbage, no objects.
for bad in '[]\nx\n' '[{"titulo":"a"},\n{"titulo":"b"' '[{"titulo":"a"} garbage]\n' '[1,2]\n'; do
    printf "$bad" >bad.json
    expect_rc 1 "$T" -f bad.json verify
    expect_out "verdict: FAILED: damaged"
    expect_out "json: not a valid JSON array of objects either"
done
printf '[{"titulo":"a"},\n{"titulo":"b"' >bad.json
expect_rc 1 "$T" -f bad.json verify
expect_out "torn tail"
# Over 64 MiB, another layout is not parsed whole (the store does not rewrite it either).
{ printf '[ '; head -c $((64 * 1024 * 1024)) /dev/zero | tr '\0' ' '; printf ']\n'; } >huge.json
expect_rc 1 "$T" -f huge.json verify
expect_out "json: not parsed whole, being over 67108864 bytes"
expect_out "verdict: FAILED: damaged"
rm -f huge.json

expect_rc 0 "$T" -f fresh.json repair
expect_out "created an empty list"
expect_rc 0 "$T" -f fresh.json verify --expect 0

# ---- add on a file in another layout: rewritten first, as the server does at start-up ----
echo "[]" >echoed.json
expect_rc 0 "$T" -f echoed.json add "tras echo"
expect_out "added task 1: tras echo"
expect_err 'echoed.json: an empty list in another layout: rewrote it as "[\n]\n"'
checks=$((checks + 1))
! ls echoed.json.orig-* >/dev/null 2>&1 || fail "a copy of the empty list in echoed.json was saved"
expect_rc 0 "$T" -f echoed.json verify --expect 1
printf '[{"id": 7, "titulo": "a"}, {"titulo": "b"}]' >python.json
expect_rc 0 "$T" -f python.json add "c"
expect_out "added task 3: c"
expect_err "rewrote 2 tasks in place (2 of them got a new id)"
expect_rc 0 "$T" -f python.json verify --expect 3
# Damage at the end (where an append looks: it reads only the tail) is not repaired by an
# add: refused with the place, file untouched.
write_file addbad.json "$(rec 1 a 1)" "garbage at the end"
cp addbad.json addbad.before
expect_rc 3 "$T" -f addbad.json add "no"
expect_err "addbad.json: byte"
same_file addbad.json addbad.before

# ---- reset ----
expect_rc 0 "$T" -f rt.json reset
expect_out "the list is empty"
checks=$((checks + 1))
[ "$(cat rt.json)" = $'[\n]' ] || fail "reset left: $(cat rt.json)"
expect_rc 0 "$T" -f rt.json verify --expect 0
expect_rc 0 "$T" -f rt.json add "tras reset"
expect_out "added task 1: tras reset"
expect_rc 0 "$T" -f created-by-reset.json reset
[ -f created-by-reset.json ] || fail "reset did not create a missing file"

# ---- verify behind a stopped lock holder: says what it waits for, then completes ----
if [ "$LOCKING" = 1 ]; then
    "$T" -f held.json add "uno" >/dev/null 2>&1
    # Python's fcntl.lockf takes the same fcntl record lock as the store (whole file, write).
    python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(2)' held.json >held.out &
    holder=$!
    for _ in $(seq 50); do grep -q held held.out 2>/dev/null && break; sleep 0.1; done
    expect_rc 0 timeout 20 "$T" -f held.json verify --expect 1
    expect_err "waiting for the read lock on held.json (process $holder holds the write lock)"
    expect_out "verdict: OK: 1 tasks"
    wait "$holder"
fi

# ---- concurrency: 4 loops x 200 taskctl add on one file ----
N=200
: >conc-status
for w in 1 2 3 4; do
    (
        for ((k = 1; k <= N; k++)); do
            timeout 30 "$T" -f conc.json add --cliente "w$w" --seq "$k" "w$w tarea $k" \
                >/dev/null 2>>conc-err
            echo "$?" >>"conc-status.$w"
        done
    ) &
done
deadline=$((SECONDS + 150))
while [ "$(jobs -rp | wc -l)" -gt 0 ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
if [ "$(jobs -rp | wc -l)" -gt 0 ]; then
    fail "concurrent adds still running after 150 s"
    jobs -rp | xargs -r kill 2>/dev/null
fi
wait
cat conc-status.* >conc-status
checks=$((checks + 1))
[ "$(wc -l <conc-status)" = $((4 * N)) ] || fail "concurrent adds: $(wc -l <conc-status) runs, expected $((4 * N))"
if [ "$LOCKING" = 1 ]; then
    checks=$((checks + 1))
    [ "$(grep -vc '^0$' conc-status)" = 0 ] ||
        fail "concurrent adds: $(grep -vc '^0$' conc-status) failed runs; stderr: $(head -5 conc-err)"
    expect_rc 0 "$T" -f conc.json verify --expect $((4 * N))
    expect_out "seq: 4 clientes with seq, 4 complete"
    expect_out "verdict: OK: $((4 * N)) tasks"
else
    # Without locks tasks may be lost or the file torn: only no crash, no usage error.
    checks=$((checks + 1))
    [ "$(grep -vc '^[03]$' conc-status)" = 0 ] ||
        fail "unlocked concurrent adds: unexpected exit codes: $(sort conc-status | uniq -c)"
    run "$T" -f conc.json verify --expect $((4 * N))
    checks=$((checks + 1))
    case $rc in 0 | 1) ;; *) fail "unlocked: verify exit $rc, expected 0 or 1" ;; esac
    echo "unlocked build: verify says: $(grep verdict "$TMP/out")"
fi

# ---- the interactive menu, through a pseudo-terminal ----
checks=$((checks + 1))
python3 "$SOURCE_ROOT/tests/taskctl_menu.py" "$T" "$TMP/menu.json"
case $? in
0) expect_rc 0 "$T" -f menu.json verify --expect 1 ;;
77) echo "menu test skipped: no pseudo-terminal" >&2 ;;
*) fail "interactive menu (see above)" ;;
esac

echo "e2e_taskctl: $checks checks, $failures failed"
[ "$failures" = 0 ]
