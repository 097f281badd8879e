# shellcheck shell=bash
# Steps shared by the bench scripts, which start with `source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"`:
# sets ROOT (the repository) and works from there, and brings scripts/lib/common.sh and
# scripts/lib/services.sh. The variables these functions set are read by the sourcing script.
# shellcheck disable=SC2034

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"

# Release build of `products` (all when none), unless SKIP_BUILD=1; sets BIN_DIR.
bench_release_build() { # [product...]
    if [[ "${SKIP_BUILD:-0}" == 1 ]]; then
        say "SKIP_BUILD=1: using the existing release build"
    elif (($# == 0)); then
        swift build -c release
    else
        # One product per invocation: swift build takes a single --product.
        local product
        for product in "$@"; do swift build -c release --product "$product"; done
    fi
    BIN_DIR="$(swift build -c release --show-bin-path)"
}

# PostgreSQL and Redis in <data dir> on random free ports. Sets STARTED_PG / STARTED_REDIS (what
# the caller's cleanup stops), DATABASE_URL and REDIS_URL.
bench_start_services() { # <data dir>
    mkdir -p "$1"
    unset PG_PORT REDIS_PORT
    svc_pg_start "$1"
    STARTED_PG=$SVC_PG_STARTED
    svc_redis_start "$1"
    STARTED_REDIS=$SVC_REDIS_STARTED
    DATABASE_URL="postgresql://chat@127.0.0.1:$(svc_state_get "$1" PG_PORT)/chat"
    REDIS_URL="redis://127.0.0.1:$(svc_state_get "$1" REDIS_PORT)/0"
}

# Signs a fresh user up on <gateway url> and prints its access token.
bench_user_token() { # <gateway url>
    local username password token
    username="bench_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    password="bench-password-1"
    curl -fsS -X POST "$1/api/auth/signup" -H 'Content-Type: application/json' \
        -d "{\"username\":\"$username\",\"email\":\"$username@example.com\",\"password\":\"$password\"}" >/dev/null
    token="$(curl -fsS -X POST "$1/api/auth/login" -H 'Content-Type: application/json' \
        -d "{\"username\":\"$username\",\"password\":\"$password\"}" | grep -o '"token" *: *"[^"]*"' | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')"
    [[ -n "$token" ]] || die "could not log in the benchmark user"
    printf '%s\n' "$token"
}

# The EXIT trap of a load benchmark: stops the processes in PIDS, then the services in DATA_DIR it
# started (STARTED_PG / STARTED_REDIS); keeps WORK's logs on failure. `bench_traps` installs it.
bench_cleanup() {
    local status=$? pid
    trap '' INT TERM
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    ((STARTED_REDIS)) && svc_redis_stop "$DATA_DIR"
    ((STARTED_PG)) && svc_pg_stop "$DATA_DIR"
    ((status == 0)) || say "logs kept in $WORK"
    exit "$status"
}

# Starts a load benchmark's bookkeeping: DATA_DIR (.data/bench-<name>), WORK (a directory for its
# logs), nothing started yet, the EXIT trap; and checks that .venv exists (its Python tools).
bench_setup() { # <name>
    DATA_DIR="$ROOT/.data/bench-$1"
    WORK="$(mktemp -d "/tmp/chat-bench-$1.XXXXXX")"
    STARTED_PG=0
    STARTED_REDIS=0
    PIDS=()
    bench_traps
    [[ -x "$ROOT/.venv/bin/python" ]] || die "no .venv: run scripts/test once (it creates .venv with the benchmark's Python tools)"
}

bench_traps() {
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# Starts a gateway for a load benchmark (production mode, API limit and socket event limits off,
# no per-IP cap) on a free port, with extra NAME=value settings; GATEWAY_BIN overrides the binary.
# Appends its pid to PIDS; sets GATEWAY_PID and GATEWAY_PORT.
bench_start_gateway() { # <gateway id> <log file> [NAME=value...]
    local id=$1 log=$2
    shift 2
    GATEWAY_PORT="$(free_port)"
    env PORT="$GATEWAY_PORT" HOST=127.0.0.1 ADMIN_HOST=127.0.0.1 ADMIN_PORT=0 CHAT_ENV=production LOG_LEVEL=warn GATEWAY_ID="$id" \
        DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" JWT_SECRET="$JWT_SECRET" MAX_CONNECTIONS_PER_IP=100000 \
        RATE_LIMIT_API=off SOCKET_EVENT_RATE=100000 SOCKET_EVENT_BURST=100000 "$@" \
        "${GATEWAY_BIN:-$BIN_DIR/Gateway}" >"$log" 2>&1 &
    GATEWAY_PID=$!
    PIDS+=("$GATEWAY_PID")
    wait_http "$GATEWAY_PORT" /health 60 200 || { tail -n 30 "$log" >&2; die "gateway $id did not come up"; }
}

# Starts a message worker for a load benchmark (production mode, the message rate limit off) with
# its admin port on a free port. Appends its pid to PIDS and WORKER_PIDS, its admin port to
# WORKER_ADMIN_PORTS; its log is WORK/<id>.log.
bench_start_worker() { # <worker id>
    local admin
    admin="$(free_port)"
    env ADMIN_PORT="$admin" ADMIN_HOST=127.0.0.1 CHAT_ENV=production LOG_LEVEL=warn WORKER_ID="$1" DATABASE_URL="$DATABASE_URL" \
        REDIS_URL="$REDIS_URL" RATE_LIMIT_MESSAGES=off "$BIN_DIR/MessageWorker" >"$WORK/$1.log" 2>&1 &
    PIDS+=("$!")
    WORKER_PIDS+=("$!")
    WORKER_ADMIN_PORTS+=("$admin")
}

# psql on the benchmark's database, unaligned, tuples only, stopping on the first error.
bench_psql() { "$SVC_PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$DATABASE_URL" "$@"; }

# utime + stime of a process in clock ticks (0 when it is gone); the fields after the command
# name, which may itself contain spaces.
bench_cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }' || echo 0; }

# The last number a JSON log line gives for "<key>".
bench_json_number() { grep -o "\"$2\":[0-9.]*" "$1" | tail -n 1 | cut -d: -f2; }

# Users <base> ... <base>+<count>-1 (a CONNECT needs its account to exist), kept when present.
bench_seed_users() { # <base> <count>
    bench_psql >/dev/null <<SQL
INSERT INTO users (id, username, email, password_hash, display_name) OVERRIDING SYSTEM VALUE
SELECT g, 'bench' || g, 'bench' || g || '@bench.invalid', 'x', 'bench' || g
FROM generate_series($1::bigint, $1::bigint + $2 - 1) AS g
ON CONFLICT DO NOTHING;
SQL
}

# Public rooms <base> ... <base>+<count>-1 of <size> members each: room <base>+r holds users
# <user base>+r*size ... (the first its admin), kept when present.
bench_seed_rooms() { # <room base> <count> <size> <user base>
    bench_psql >/dev/null <<SQL
INSERT INTO conversations (id, kind, name, created_by, member_count) OVERRIDING SYSTEM VALUE
SELECT $1::bigint + r, 'room', 'bench room ' || r, $4::bigint + r * $3, $3
FROM generate_series(0, $2 - 1) AS r
ON CONFLICT DO NOTHING;
INSERT INTO conversation_members (conversation_id, user_id, role)
SELECT $1::bigint + r, $4::bigint + r * $3 + m, CASE WHEN m = 0 THEN 'admin' ELSE 'member' END
FROM generate_series(0, $2 - 1) AS r, generate_series(0, $3 - 1) AS m
ON CONFLICT DO NOTHING;
SQL
}
