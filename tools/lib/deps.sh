# tools/lib/deps.sh - install the Debian packages listed in tools/packages.txt when missing.
# Sourced by tools/test and tools/demo:
#
#   . tools/lib/deps.sh
#   deps_ensure [--for test|quick|demo] [EXTRA_PACKAGE...]
#
# --for test (the default, tools/test): every group of tools/packages.txt. --for quick
# (tools/test --quick): [build], [demo] and [e2e]. --for demo (tools/demo): only [build]
# and [demo]; a classroom machine needs no valgrind or clang.
# A missing [optional] package that apt does not offer is skipped with a note naming the
# suite that will skip; any other missing package that cannot be installed is an error.
# shellcheck shell=bash

# deps_list GROUP...: the packages of those groups, one per line; for [optional] each line
# is "PACKAGE WHAT-SKIPS" (the text after "#" in tools/packages.txt).
deps_list() {
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    awk -v groups=" $* " '
        /^\[[a-z0-9]+\][[:space:]]*$/ { group = $0; gsub(/[][[:space:]]/, "", group); next }
        /^[[:space:]]*(#|$)/ { next }
        index(groups, " " group " ") {
            what = ""
            if (index($0, "#")) {
                what = substr($0, index($0, "#") + 1)
                sub(/^[[:space:]]+/, "", what)
            }
            print $1 (group == "optional" ? " " what : "")
        }' "$root/tools/packages.txt"
}

deps_missing() {
    local pkg missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$pkg")
    done
    echo "${missing[@]}"
}

# deps_apt_offers PKG: apt has an installable version of PKG ("Candidate: (none)" or no
# entry at all means it does not).
deps_apt_offers() {
    apt-cache policy "$1" 2>/dev/null | grep -q '^[[:space:]]*Candidate: [^(]'
}

# deps__skipping WHY PKG|WHAT...: says, for each optional package left out, what will skip.
deps__skipping() {
    local why=$1 pkg
    shift
    for pkg in "$@"; do
        echo "deps: ${pkg%%|*} $why: ${pkg#*|} will skip" >&2
    done
}

# deps_as_root CMD...: runs CMD as root: directly, or through `sudo -n` (never a password
# prompt in the middle of a test run). Fails when neither is possible.
deps_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

# deps_apt ARG...: apt-get as root, without questions (the variable is passed through env:
# sudo would drop it), waiting out another apt run instead of failing at once.
deps_apt() {
    deps_as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@"
}

deps_ensure() {
    local purpose=test groups=()
    if [ "${1:-}" = --for ]; then
        purpose=${2:-}
        shift 2 || shift
    fi
    case "$purpose" in
    demo) groups=(build demo) ;;
    quick) groups=(build demo e2e) ;;
    test) groups=(build demo e2e test) ;;
    *)
        echo "deps: deps_ensure --for '$purpose': expected test, quick or demo" >&2
        return 1
        ;;
    esac
    local list missing pkg what optional=()
    list=$(deps_list "${groups[@]}")
    # shellcheck disable=SC2086
    missing=$(deps_missing $list "$@")
    if [ "$purpose" = test ]; then
        while read -r pkg what; do
            [ -z "$(deps_missing "$pkg")" ] || optional+=("$pkg|$what")
        done < <(deps_list optional)
    fi
    [ -z "$missing" ] && [ ${#optional[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        [ -z "$missing" ] || {
            echo "deps: missing packages ($missing) and no apt-get: install them by hand" >&2
            return 1
        }
        deps__skipping "is not installed and there is no apt-get" "${optional[@]}"
        return 0
    fi
    if ! deps_as_root true; then
        if [ -n "$missing" ]; then
            echo "deps: missing packages; run as root:" >&2
            echo "  apt-get update && apt-get install -y $missing ${optional[*]%%|*}" >&2
            return 1
        else
            deps__skipping "is not installed (installing needs root)" "${optional[@]}"
            return 0
        fi
    fi
    # The package lists: always before an install; for optional packages alone only when
    # there are none yet (a fresh machine), so a release that lacks one does not pay for
    # an update on every run.
    if [ -n "$missing" ] || ! compgen -G '/var/lib/apt/lists/*Packages*' >/dev/null; then
        deps_apt update -qq || {
            echo "deps: apt-get update failed" >&2
            [ -z "$missing" ] || return 1
        }
    fi
    for pkg in "${optional[@]}"; do
        if deps_apt_offers "${pkg%%|*}"; then
            missing="$missing ${pkg%%|*}"
        else
            deps__skipping "is not a package apt offers here" "$pkg"
        fi
    done
    missing=${missing# }
    [ -z "$missing" ] && return 0
    echo "deps: installing $missing" >&2
    # shellcheck disable=SC2086
    deps_apt install -y -qq --no-install-recommends $missing >&2 || {
        echo "deps: apt-get install $missing failed" >&2
        return 1
    }
}
