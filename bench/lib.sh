# shellcheck shell=bash
# Steps shared by the bench scripts; source after scripts/lib/common.sh and scripts/lib/services.sh.
# The variables these functions set are read by the sourcing script.
# shellcheck disable=SC2034

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
