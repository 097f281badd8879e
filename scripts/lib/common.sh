#!/usr/bin/env bash
# Helpers shared by scripts/run, scripts/test and bench/*.sh. Source it; it defines functions only.

# Debian packages every command needs: the C libraries the Swift package links, and the servers.
# shellcheck disable=SC2034 # used by the scripts that source this file
CHAT_BASE_PACKAGES=(libhiredis-dev libpq-dev libssl-dev pkg-config postgresql redis-server)

say() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# A visible header before each step, so a log reader can find where a failure happened.
header() { printf '\n==> %s\n' "$*"; }

# Installs the named Debian packages that are missing (apt-get update first, only if one is).
# Works as root, or as a user with sudo.
ensure_packages() {
    local missing=() pkg status
    for pkg in "$@"; do
        status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
        [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        say "all required Debian packages are installed"
        return 0
    fi
    local sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null || die "missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]}) or install sudo"
        sudo=(sudo)
    fi
    say "installing missing Debian packages: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Puts a Swift toolchain on PATH or stops with an actionable message.
ensure_swift() {
    if ! command -v swift >/dev/null; then
        local candidate
        for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
            if [[ -x "$candidate/swift" ]]; then
                PATH="$candidate:$PATH"
                export PATH
                break
            fi
        done
    fi
    command -v swift >/dev/null || die "swift not found: install a Swift 6 toolchain (https://www.swift.org/install/linux/) and put its usr/bin on PATH"
    local version
    version="$(swift --version 2>/dev/null | head -n 1)"
    [[ "$version" == *"version 6."* ]] || warn "expected Swift 6, found: $version"
    say "$version"
}

# Waits until an HTTP GET on 127.0.0.1:<port><path> answers with status <expected> (default 200).
# Uses bash's /dev/tcp so it needs no client program. Returns 1 after <timeout> seconds.
wait_http() { # <port> <path> <timeout-seconds> [expected-status] [pid-that-must-stay-alive]
    local port="$1" path="$2" timeout="$3" expected="${4:-200}" pid="${5:-}" deadline status
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        status="$(http_status "$port" "$path" || true)"
        [[ "$status" == "$expected" ]] && return 0
        sleep 0.2
    done
    return 1
}

# Prints the status code of GET <path> on 127.0.0.1:<port>, or fails.
http_status() { # <port> <path>
    # shellcheck disable=SC2016 # expanded by the inner shell
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$2" >&3
        IFS=" " read -r _ code _ <&3 || exit 1
        printf "%s\n" "$code"
    ' _ "$1" "$2" 2>/dev/null
}

# A random free loopback port in 20000-32767 (outside the kernel's ephemeral range).
free_port() {
    local port tries=0
    while ((tries < 200)); do
        tries=$((tries + 1))
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
        case "$port" in 54329 | 63799 | 3000 | 9091) continue ;; esac
        if ! timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    die "no free port found"
}

# Sends SIGTERM to <pid> (a child of this shell), waits up to <timeout> s, then SIGKILL.
stop_child() { # <pid> <name> [timeout-seconds]
    local pid="$1" name="$2" timeout="${3:-15}" i
    kill -0 "$pid" 2>/dev/null || {
        wait "$pid" 2>/dev/null || true
        return 0
    }
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        warn "$name (pid $pid) did not stop within ${timeout}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
