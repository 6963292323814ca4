# bench/lib.sh - what every bench/*.sh script does with its arguments before it measures:
# --help from the script's header comment, a clear error for an unknown option or for a
# build directory that does not exist. Sourced, never run:
#
#   ME=bench/NAME.sh
#   . "$ROOT/bench/lib.sh"
#   bench_options "$@"       # scripts with positional arguments only (see below)
#   bench_build_dir "$BUILD" # before anything looks inside it
#
# bench_help prints the header: the comments from the second line (shellcheck directives
# left out) up to the first line that is not a comment. Usage errors exit 2, naming $ME.
# POSIX sh, for bench/store.sh.
# shellcheck shell=sh

bench_help() {
    awk 'NR == 1 || /^# shellcheck / { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}

# bench_usage_error MESSAGE: says what is wrong and exits 2.
bench_usage_error() {
    echo "$ME: $* (see $ME --help)" >&2
    exit 2
}

# bench_options ARG...: for a script that takes no options, only positional arguments (build
# directories, numbers). -h or --help prints the header and exits 0; any other argument
# that starts with "-" is an unknown option (exit 2). Stops at "--": what follows is
# another program's (bench/ab.sh passes it to taskserver).
bench_options() {
    for bench__arg in "$@"; do
        case $bench__arg in
        --) return 0 ;;
        -h | --help) bench_help; exit 0 ;;
        -?*) bench_usage_error "unknown option $bench__arg" ;;
        esac
    done
    return 0
}

# bench_build_dir DIR: exits 2 unless DIR is a directory (a meson build directory is
# checked further by what the script needs from it).
bench_build_dir() {
    [ -d "$1" ] && return 0
    echo "$ME: build directory $1 does not exist (meson setup $1 && meson compile -C $1)" >&2
    exit 2
}
