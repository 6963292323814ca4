# tools/lib/deps.sh - install the Debian packages listed in tools/packages.txt when missing.
# Sourced by tools/test and tools/demo: `. tools/lib/deps.sh; deps_ensure [EXTRA_PACKAGE...]`.

deps_missing() {
    local pkg missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$pkg")
    done
    echo "${missing[@]}"
}

# deps_ensure [EXTRA...]: every package of tools/packages.txt plus EXTRA, installed with
# apt-get as root or through sudo; otherwise prints the exact command and fails.
deps_ensure() {
    local root list missing sudo=""
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    list=$(grep -v '^[[:space:]]*\(#\|$\)' "$root/tools/packages.txt")
    # shellcheck disable=SC2086
    missing=$(deps_missing $list "$@")
    [ -z "$missing" ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "deps: missing packages ($missing) and no apt-get: install them by hand" >&2
        return 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo"
        else
            echo "deps: missing packages; run as root:" >&2
            echo "  apt-get update && apt-get install -y $missing" >&2
            return 1
        fi
    fi
    echo "deps: installing $missing" >&2
    # shellcheck disable=SC2086
    $sudo apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            $missing >&2 || {
        echo "deps: apt-get install $missing failed" >&2
        return 1
    }
}
