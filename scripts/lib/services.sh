#!/usr/bin/env bash
# Local PostgreSQL 15 and Redis servers in a project-local data directory, for scripts/run,
# scripts/test, bench/ and the end-to-end tests. No service manager is involved: each server is a
# plain background process in its own session (so a Ctrl-C in the terminal reaches our trap, not
# the databases), stopped by the pid it wrote itself.
#
# As a command:
#   scripts/lib/services.sh <datadir> <command>...
#     start | stop              both servers
#     pg-start | pg-stop        PostgreSQL only
#     redis-start | redis-stop  Redis only
#     env                       print DATABASE_URL=..., REDIS_URL=... and the ports (KEY=value lines)
#     status                    print whether each server runs
#     wipe                      stop both and delete the data directory
# As a library (scripts/run, scripts/test, bench/http.sh):
#   source scripts/lib/services.sh; svc_pg_start <datadir>; svc_redis_start <datadir>; ...
#
# <datadir>/state remembers ports, pids and paths, so a restart reuses the same port (the e2e
# restart tests rely on that). Read only when a data directory is first used:
#   PG_PORT, REDIS_PORT  fixed ports (default: a random free port in 20000-32767, outside the
#                        kernel's ephemeral range and never 54329/63799, the scripts/run defaults)
#   SERVICES_FSYNC       on (default) | off (throw-away test data only)
# Always read:
#   PG_BIN               PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   SERVICES_START_TIMEOUT (60), SERVICES_STOP_TIMEOUT (30)  seconds to wait for a start / a stop
#                        before giving up / sending SIGKILL

set -euo pipefail

SVC_PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
# Seconds to wait for a server to come up, and for one to stop before SIGKILL.
SVC_START_TIMEOUT="${SERVICES_START_TIMEOUT:-60}"
SVC_STOP_TIMEOUT="${SERVICES_STOP_TIMEOUT:-30}"
# Ports that scripts/run uses by default; random picks avoid them.
SVC_RESERVED_PORTS=" 54329 63799 "
# Set by svc_pg_start / svc_redis_start: 1 if that call started the server, 0 if it already ran.
# shellcheck disable=SC2034 # read by the scripts that source this file
SVC_PG_STARTED=0
SVC_REDIS_STARTED=0

svc_log() { printf '[services] %s\n' "$*" >&2; }
svc_die() { printf '[services] error: %s\n' "$*" >&2; return 1; }

svc_abs() { (cd "$1" && pwd -P); }

# --- state file: KEY=value lines -------------------------------------------------------------

svc_state_get() { # <dir> <key>
    local file="$1/state"
    [[ -f "$file" ]] || return 0
    awk -v k="$2" 'index($0, k "=") == 1 { v = substr($0, length(k) + 2) } END { if (v != "") print v }' "$file"
}

svc_state_set() { # <dir> <key> <value>
    local file="$1/state" tmp
    tmp="$(mktemp "$1/.state.XXXXXX")"
    if [[ -f "$file" ]]; then
        awk -v k="$2" 'index($0, k "=") != 1' "$file" >"$tmp"
    fi
    printf '%s=%s\n' "$2" "$3" >>"$tmp"
    mv -f "$tmp" "$file"
}

# --- processes and ports ------------------------------------------------------------------

# True if <pid> is alive and its command name is <name> (guards against a recycled pid).
svc_proc_is() { # <pid> <name>
    local pid="$1" comm
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
    [[ "$comm" == "$2"* ]]
}

svc_port_in_use() { # <port>
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

svc_pick_port() {
    local port tries=0
    while ((tries < 200)); do
        tries=$((tries + 1))
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
        [[ "$SVC_RESERVED_PORTS" == *" $port "* ]] && continue
        svc_port_in_use "$port" && continue
        printf '%s\n' "$port"
        return 0
    done
    svc_die "no free port found in 20000-32767"
}

# Signal <pid>, wait up to SVC_STOP_TIMEOUT seconds, then SIGKILL.
svc_kill_wait() { # <pid> <name> <signal>
    local pid="$1" name="$2" sig="$3" i
    svc_proc_is "$pid" "$name" || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < SVC_STOP_TIMEOUT * 10; i++)); do
        svc_proc_is "$pid" "$name" || return 0
        sleep 0.1
    done
    svc_log "$name (pid $pid) did not stop within ${SVC_STOP_TIMEOUT}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        svc_proc_is "$pid" "$name" || return 0
        sleep 0.1
    done
    svc_die "$name (pid $pid) survived SIGKILL"
}

svc_prepare_dir() { # <dir>
    mkdir -p "$1" "$1/logs"
}

# --- PostgreSQL -------------------------------------------------------------------------------

svc_is_root() { [[ "$(id -u)" == 0 ]]; }

# Runs a command as the user that owns the cluster: `postgres` when we are root (initdb and
# postgres refuse to run as root), ourselves otherwise.
svc_as_pg() {
    if svc_is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Where the cluster lives: <dir>/postgres, or a private directory under /tmp when the postgres
# user cannot reach <dir> or the socket path would be too long for a Unix socket (107 bytes).
svc_pg_home() { # <dir>
    local dir="$1" home
    home="$(svc_state_get "$dir" PG_HOME)"
    if [[ -n "$home" ]]; then
        printf '%s\n' "$home"
        return 0
    fi
    home="$dir/postgres"
    local reason=""
    if ((${#home} > 80)); then
        reason="its path is too long for a Unix socket"
    elif svc_is_root; then
        getent passwd postgres >/dev/null || svc_die "the 'postgres' system user is missing (install the postgresql package)" || return 1
        if ! runuser -u postgres -- test -x "$dir"; then
            reason="the postgres user cannot traverse $dir"
        fi
    fi
    if [[ -n "$reason" ]]; then
        home="$(mktemp -d /tmp/chat-pg.XXXXXX)"
        svc_log "PostgreSQL data goes to $home because $reason"
    else
        mkdir -p "$home"
    fi
    chmod 700 "$home"
    if svc_is_root; then chown postgres:postgres "$home"; fi
    svc_state_set "$dir" PG_HOME "$home"
    printf '%s\n' "$home"
}

svc_pg_pid() { # <dir>: pid of the running postmaster of this data dir, or nothing
    local dir="$1" home pid=""
    home="$(svc_state_get "$dir" PG_HOME)"
    if [[ -n "$home" && -f "$home/data/postmaster.pid" ]]; then
        pid="$(head -n 1 "$home/data/postmaster.pid" 2>/dev/null || true)"
    fi
    [[ -n "$pid" ]] || pid="$(svc_state_get "$dir" PG_PID)"
    if svc_proc_is "$pid" postgres; then printf '%s\n' "$pid"; fi
}

svc_pg_init() { # <dir>: initdb once
    local dir="$1" home log
    home="$(svc_pg_home "$dir")" || return 1
    log="$dir/logs/postgres.log"
    if svc_is_root && [[ "$(stat -c %U "$home")" != postgres ]]; then
        chown -R postgres:postgres "$home"
    fi
    if [[ ! -f "$home/data/PG_VERSION" ]]; then
        [[ -x "$SVC_PG_BIN/initdb" ]] || svc_die "$SVC_PG_BIN/initdb not found (install the postgresql package)" || return 1
        rm -rf "$home/data"
        svc_log "initdb $home/data"
        # trust is acceptable: the server listens on 127.0.0.1 and a socket dir only we can enter.
        if ! svc_as_pg "$SVC_PG_BIN/initdb" -D "$home/data" -U postgres -A trust -E UTF8 --locale=C >>"$log" 2>&1; then
            tail -n 20 "$log" >&2
            svc_die "initdb failed (log: $log)"
            return 1
        fi
    fi
    svc_as_pg mkdir -p "$home/socket"
    svc_as_pg chmod 700 "$home/socket"
}

svc_pg_start() { # <dir>
    local dir="$1" home port fsync log pid attempt launcher ready i
    SVC_PG_STARTED=0
    svc_prepare_dir "$dir"
    dir="$(svc_abs "$dir")"
    pid="$(svc_pg_pid "$dir")"
    if [[ -n "$pid" ]]; then
        svc_log "PostgreSQL already running (pid $pid, port $(svc_state_get "$dir" PG_PORT))"
        return 0
    fi
    svc_pg_init "$dir" || return 1
    home="$(svc_state_get "$dir" PG_HOME)"
    log="$dir/logs/postgres.log"
    fsync="$(svc_state_get "$dir" PG_FSYNC)"
    if [[ -z "$fsync" ]]; then
        fsync="${SERVICES_FSYNC:-on}"
        svc_state_set "$dir" PG_FSYNC "$fsync"
    fi
    local fixed=1
    port="$(svc_state_get "$dir" PG_PORT)"
    [[ -n "$port" ]] || port="${PG_PORT:-}"
    [[ -n "$port" ]] || fixed=0
    for attempt in 1 2 3; do
        if [[ "$fixed" == 0 ]]; then port="$(svc_pick_port)" || return 1; fi
        if svc_port_in_use "$port"; then
            if [[ "$fixed" == 1 ]]; then
                svc_die "port $port (PostgreSQL of $dir) is taken by another process"
                return 1
            fi
            continue
        fi
        local args=(-D "$home/data" -p "$port" -k "$home/socket" -c listen_addresses=127.0.0.1
            -c max_connections=200 -c logging_collector=off)
        if [[ "$fsync" == off ]]; then
            args+=(-c fsync=off -c synchronous_commit=off -c full_page_writes=off)
        fi
        svc_log "starting PostgreSQL on 127.0.0.1:$port (data $home/data, log $log)"
        if svc_is_root; then
            setsid runuser -u postgres -- "$SVC_PG_BIN/postgres" "${args[@]}" >>"$log" 2>&1 </dev/null &
        else
            setsid "$SVC_PG_BIN/postgres" "${args[@]}" >>"$log" 2>&1 </dev/null &
        fi
        launcher=$!
        ready=0
        for ((i = 0; i < SVC_START_TIMEOUT * 5; i++)); do
            if ! kill -0 "$launcher" 2>/dev/null; then break; fi
            if "$SVC_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1 2>/dev/null; then
                ready=1
                break
            fi
            sleep 0.2
        done
        if [[ "$ready" == 1 ]]; then
            svc_state_set "$dir" PG_PORT "$port"
            pid="$(head -n 1 "$home/data/postmaster.pid")"
            svc_state_set "$dir" PG_PID "$pid"
            svc_pg_bootstrap "$dir" || return 1
            # shellcheck disable=SC2034
            SVC_PG_STARTED=1
            svc_log "PostgreSQL ready (pid $pid): postgresql://chat@127.0.0.1:$port/chat"
            return 0
        fi
        kill -INT "$launcher" 2>/dev/null || true
        wait "$launcher" 2>/dev/null || true
        tail -n 15 "$log" >&2
        if [[ "$fixed" == 1 ]]; then break; fi
        svc_log "PostgreSQL did not start on port $port (attempt $attempt), trying another port"
    done
    svc_die "PostgreSQL did not start (log: $log)"
}

# Role and database `chat`, idempotent. The role may create databases (the e2e migration tests
# make one per test); it owns its database, so it can create trusted extensions such as pg_trgm.
svc_pg_bootstrap() { # <dir>
    local dir="$1" home port
    home="$(svc_state_get "$dir" PG_HOME)"
    port="$(svc_state_get "$dir" PG_PORT)"
    "$SVC_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$home/socket" -p "$port" -U postgres -d postgres >/dev/null <<'SQL'
SELECT 'CREATE ROLE chat LOGIN CREATEDB' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'chat')\gexec
SELECT 'CREATE DATABASE chat OWNER chat' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'chat')\gexec
SQL
}

svc_pg_stop() { # <dir>
    local dir="$1" pid
    [[ -d "$dir" ]] || return 0
    pid="$(svc_pg_pid "$dir")"
    if [[ -z "$pid" ]]; then
        svc_log "PostgreSQL of $dir is not running"
        return 0
    fi
    svc_log "stopping PostgreSQL (pid $pid)"
    # SIGINT = fast shutdown: disconnect clients, checkpoint, exit.
    svc_kill_wait "$pid" postgres INT
}

# --- Redis --------------------------------------------------------------------------------------

svc_redis_pid() { # <dir>
    local dir="$1" pid=""
    if [[ -f "$dir/redis/redis.pid" ]]; then pid="$(head -n 1 "$dir/redis/redis.pid" 2>/dev/null || true)"; fi
    [[ -n "$pid" ]] || pid="$(svc_state_get "$dir" REDIS_PID)"
    if svc_proc_is "$pid" redis-server; then printf '%s\n' "$pid"; fi
}

svc_redis_start() { # <dir>
    local dir="$1" port log pid attempt launcher ready i reply
    SVC_REDIS_STARTED=0
    command -v redis-server >/dev/null || svc_die "redis-server not found (install the redis-server package)" || return 1
    svc_prepare_dir "$dir"
    dir="$(svc_abs "$dir")"
    pid="$(svc_redis_pid "$dir")"
    if [[ -n "$pid" ]]; then
        svc_log "Redis already running (pid $pid, port $(svc_state_get "$dir" REDIS_PORT))"
        return 0
    fi
    mkdir -p "$dir/redis"
    rm -f "$dir/redis/redis.pid"
    log="$dir/logs/redis.log"
    local fixed=1
    port="$(svc_state_get "$dir" REDIS_PORT)"
    [[ -n "$port" ]] || port="${REDIS_PORT:-}"
    [[ -n "$port" ]] || fixed=0
    for attempt in 1 2 3; do
        if [[ "$fixed" == 0 ]]; then port="$(svc_pick_port)" || return 1; fi
        if svc_port_in_use "$port"; then
            if [[ "$fixed" == 1 ]]; then
                svc_die "port $port (Redis of $dir) is taken by another process"
                return 1
            fi
            continue
        fi
        svc_log "starting Redis on 127.0.0.1:$port (log $log)"
        setsid redis-server --bind 127.0.0.1 --port "$port" --dir "$dir/redis" --save '' --appendonly no \
            --daemonize no --pidfile "$dir/redis/redis.pid" --logfile '' >>"$log" 2>&1 </dev/null &
        launcher=$!
        ready=0
        for ((i = 0; i < SVC_START_TIMEOUT * 5; i++)); do
            if ! kill -0 "$launcher" 2>/dev/null; then break; fi
            reply="$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)"
            if [[ "$reply" == PONG && -s "$dir/redis/redis.pid" ]]; then
                ready=1
                break
            fi
            sleep 0.2
        done
        if [[ "$ready" == 1 ]]; then
            pid="$(head -n 1 "$dir/redis/redis.pid")"
            svc_state_set "$dir" REDIS_PORT "$port"
            svc_state_set "$dir" REDIS_PID "$pid"
            # shellcheck disable=SC2034
            SVC_REDIS_STARTED=1
            svc_log "Redis ready (pid $pid): redis://127.0.0.1:$port/0"
            return 0
        fi
        kill -TERM "$launcher" 2>/dev/null || true
        wait "$launcher" 2>/dev/null || true
        tail -n 15 "$log" >&2
        if [[ "$fixed" == 1 ]]; then break; fi
        svc_log "Redis did not start on port $port (attempt $attempt), trying another port"
    done
    svc_die "Redis did not start (log: $log)"
}

svc_redis_stop() { # <dir>
    local dir="$1" pid
    [[ -d "$dir" ]] || return 0
    pid="$(svc_redis_pid "$dir")"
    if [[ -z "$pid" ]]; then
        svc_log "Redis of $dir is not running"
        return 0
    fi
    svc_log "stopping Redis (pid $pid)"
    svc_kill_wait "$pid" redis-server TERM
}

# --- whole data directory -----------------------------------------------------------------------

svc_env() { # <dir>: KEY=value lines for what this data dir has
    local dir="$1" port home
    port="$(svc_state_get "$dir" PG_PORT)"
    home="$(svc_state_get "$dir" PG_HOME)"
    if [[ -n "$port" ]]; then
        printf 'DATABASE_URL=postgresql://chat@127.0.0.1:%s/chat\n' "$port"
        printf 'PG_PORT=%s\nPG_SOCKET_DIR=%s\nPG_BIN=%s\n' "$port" "$home/socket" "$SVC_PG_BIN"
    fi
    port="$(svc_state_get "$dir" REDIS_PORT)"
    if [[ -n "$port" ]]; then
        printf 'REDIS_URL=redis://127.0.0.1:%s/0\nREDIS_PORT=%s\n' "$port" "$port"
    fi
}

svc_status() { # <dir>
    local dir="$1" pid
    pid="$(svc_pg_pid "$dir")"
    if [[ -n "$pid" ]]; then echo "postgres: running (pid $pid, port $(svc_state_get "$dir" PG_PORT))"; else echo "postgres: stopped"; fi
    pid="$(svc_redis_pid "$dir")"
    if [[ -n "$pid" ]]; then echo "redis: running (pid $pid, port $(svc_state_get "$dir" REDIS_PORT))"; else echo "redis: stopped"; fi
}

svc_stop_all() { # <dir>
    local rc=0
    svc_redis_stop "$1" || rc=1
    svc_pg_stop "$1" || rc=1
    return "$rc"
}

# Stops whatever a previous run left behind and deletes the data directory (and a /tmp fallback).
svc_wipe() { # <dir>
    local dir="$1" home
    [[ -d "$dir" ]] || return 0
    svc_stop_all "$dir" || return 1
    home="$(svc_state_get "$dir" PG_HOME)"
    if [[ "$home" == /tmp/chat-pg.* && -d "$home" ]]; then rm -rf "$home"; fi
    rm -rf "$dir"
}

svc_main() {
    if (($# < 2)); then
        echo "usage: $0 <datadir> start|stop|pg-start|pg-stop|redis-start|redis-stop|env|status|wipe ..." >&2
        return 2
    fi
    local dir="$1" cmd
    shift
    for cmd in "$@"; do
        case "$cmd" in
            start) svc_pg_start "$dir" && svc_redis_start "$dir" ;;
            stop) svc_stop_all "$dir" ;;
            pg-start) svc_pg_start "$dir" ;;
            pg-stop) svc_pg_stop "$dir" ;;
            redis-start) svc_redis_start "$dir" ;;
            redis-stop) svc_redis_stop "$dir" ;;
            env) svc_env "$dir" ;;
            status) svc_status "$dir" ;;
            wipe) svc_wipe "$dir" ;;
            *)
                echo "unknown command: $cmd" >&2
                return 2
                ;;
        esac
    done
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    svc_main "$@"
fi
