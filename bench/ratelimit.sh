#!/usr/bin/env bash
# Rate-limiter benchmark on loopback, every figure against a reference measured in the same run:
#  1. decisions per second of the sliding-log script in Redis (redis-benchmark EVALSHA over 100k
#     subjects) against a plain ZADD and PING on the same server;
#  2. what the API limit adds to a request: two gateways on the same Redis and Postgres, one with
#     RATE_LIMIT_API=off (the reference) and one with the limit on (a quota no run reaches, so
#     every request takes a full decision and none is refused), under wrk with 1 and with 64
#     connections, for an anonymous request (404 under /api/, a random X-Forwarded-For per request
#     through TRUSTED_PROXIES=127.0.0.1, so each request is a different subject) and for an
#     authenticated GET /api/auth/profile (one user: one subject with a long log).
# Prints a markdown table (also saved under bench/results/).
#
# Usage: bench/ratelimit.sh
# Environment: WRK_DURATION (10s), REDIS_BENCH_REQUESTS (300000), SKIP_BUILD=1 reuses the last
# release build. Servers live in .data/bench/ (PostgreSQL and Redis on random free ports).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION="${WRK_DURATION:-10s}"
REQUESTS="${REDIS_BENCH_REQUESTS:-300000}"
DATA_DIR="$ROOT/.data/bench"
WORK="$(mktemp -d /tmp/chat-bench.XXXXXX)"
OFF_PID=""
ON_PID=""
STARTED_PG=0
STARTED_REDIS=0

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$?
    trap '' INT TERM
    [[ -n "$OFF_PID" ]] && stop_child "$OFF_PID" Gateway
    [[ -n "$ON_PID" ]] && stop_child "$ON_PID" Gateway
    ((STARTED_REDIS)) && svc_redis_stop "$DATA_DIR"
    ((STARTED_PG)) && svc_pg_stop "$DATA_DIR"
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

header "Debian packages"
ensure_packages "${CHAT_BASE_PACKAGES[@]}" curl wrk redis-tools
ensure_swift

header "release build"
# shellcheck disable=SC2119 # no product: build everything
bench_release_build
[[ -x "$BIN_DIR/Gateway" ]] || die "$BIN_DIR/Gateway is missing"

header "PostgreSQL and Redis in .data/bench"
bench_start_services "$DATA_DIR"
REDIS_PORT="$(svc_state_get "$DATA_DIR" REDIS_PORT)"
SECRET="$(head -c 48 /dev/urandom | base64 -w 0)"

start_gateway() { # <log> <RATE_LIMIT_API value>; prints the port
    local port
    port="$(free_port)"
    env PORT="$port" HOST=127.0.0.1 ADMIN_HOST=127.0.0.1 ADMIN_PORT=0 CHAT_ENV=development LOG_LEVEL=warn JWT_SECRET="$SECRET" \
        DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" RATE_LIMIT_API="$2" TRUSTED_PROXIES=127.0.0.1 \
        RATE_LIMIT_LOGIN_IP=off RATE_LIMIT_LOGIN_ACCOUNT=off \
        "$BIN_DIR/Gateway" >"$WORK/$1" 2>&1 &
    echo "$port $!"
}
header "two gateways: RATE_LIMIT_API=off (reference) and RATE_LIMIT_API=10000000/1m"
read -r OFF_PORT OFF_PID < <(start_gateway gateway-off.log off)
read -r ON_PORT ON_PID < <(start_gateway gateway-on.log 10000000/1m)
for pair in "$OFF_PORT:$OFF_PID" "$ON_PORT:$ON_PID"; do
    wait_http "${pair%%:*}" /health 60 200 "${pair##*:}" || { tail -n 30 "$WORK"/gateway-*.log >&2; die "a Gateway did not come up"; }
done

TOKEN="$(bench_user_token "http://127.0.0.1:$OFF_PORT")"
curl -fsS -D "$WORK/headers.txt" -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ON_PORT/api/auth/profile"
grep -qi '^RateLimit: "api";r=' "$WORK/headers.txt" || die "the limited gateway sent no RateLimit header"

header "redis-benchmark: the limit script against ZADD and PING (same server, -c 50, $REQUESTS requests, 100k subjects)"
# The script exactly as the gateway sends it: the Swift literal without its indentation.
awk '/RedisScript\(source: """/ { on = 1; next } on && /^ *"""\)/ { exit } on { sub(/^        /, ""); print }' \
    Sources/Shared/RateLimit/RateLimiter.swift >"$WORK/script.lua"
SHA="$(redis-cli -p "$REDIS_PORT" SCRIPT LOAD "$(cat "$WORK/script.lua")")"
say "script sha1 $SHA"
rb() { # <name> <clients> <command...>: requests/s and p50 (ms) from --csv
    local name="$1" clients="$2" requests="$REQUESTS"
    shift 2
    ((clients > 1)) || requests=$((REQUESTS / 10))
    redis-benchmark -p "$REDIS_PORT" -c "$clients" -n "$requests" -r 100000 --csv "$@" | tail -n 1 | tr -d '"' | tee "$WORK/rb-$name.csv"
}
for clients in 50 1; do
    rb "ping-$clients" "$clients" PING
    rb "zadd-$clients" "$clients" ZADD chat:rl:refbench:__rand_int__ 1 m__rand_int__
    rb "script-$clients" "$clients" EVALSHA "$SHA" 1 chat:rl:bench:__rand_int__ 100 60000 m__rand_int__
done
rb_rps() { cut -d, -f2 "$WORK/rb-$1.csv"; }
rb_p50() { cut -d, -f5 "$WORK/rb-$1.csv"; }
redis-cli -p "$REDIS_PORT" --scan --pattern 'chat:rl:*bench:*' | xargs -r -n 1000 redis-cli -p "$REDIS_PORT" DEL >/dev/null

cat >"$WORK/xff.lua" <<'EOF'
-- A different client address per request (the gateway trusts 127.0.0.1's X-Forwarded-For).
math.randomseed(os.time())
request = function()
  local ip = math.random(1, 223) .. "." .. math.random(0, 255) .. "." .. math.random(0, 255) .. "." .. math.random(1, 254)
  return wrk.format("GET", "/api/bench-not-found", { ["X-Forwarded-For"] = ip })
end
EOF
run_wrk() { # <name> <connections> <url> [wrk args]
    local name="$1" connections="$2" url="$3"
    shift 3
    say "wrk -t1 -c$connections -d$DURATION --latency $* $url"
    wrk -t1 -c"$connections" -d"$DURATION" --latency "$@" "$url" | tee "$WORK/wrk-$name.txt"
}
rps_of() { awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk-$1.txt"; }
pct_of() { awk -v p="$2" '$1 == p { print $2 }' "$WORK/wrk-$1.txt"; }
# wrk latencies as microseconds (it prints us, ms or s).
us_of() { pct_of "$1" "$2" | awk '{ v = $1 + 0; if ($1 ~ /ms$/) v *= 1000; else if ($1 ~ /us$/) v *= 1; else if ($1 ~ /s$/) v *= 1000000; printf "%.0f", v }'; }
refused_of() { awk '/Non-2xx or 3xx responses:/ { print $NF }' "$WORK/wrk-$1.txt"; }

for connections in 1 64; do
    for side in off on; do
        port="$OFF_PORT"
        [[ "$side" == on ]] && port="$ON_PORT"
        header "wrk -c$connections: anonymous 404 under /api/ ($side)"
        run_wrk "anon-$side-$connections" "$connections" "http://127.0.0.1:$port/api/bench-not-found" -s "$WORK/xff.lua"
        header "wrk -c$connections: GET /api/auth/profile ($side)"
        run_wrk "profile-$side-$connections" "$connections" "http://127.0.0.1:$port/api/auth/profile" -H "Authorization: Bearer $TOKEN"
    done
done
# The limited gateway must not have refused anything (the quota is out of reach): any 429 would
# make its figures look cheaper than they are.
for name in profile-on-1 profile-on-64; do
    [[ -z "$(refused_of "$name")" ]] || die "$name had non-2xx responses: the benchmark is invalid"
done

row() { # <label> <name> <connections>
    local off="$2-off-$3" on="$2-on-$3"
    awk -v label="$1" -v c="$3" -v roff="$(rps_of "$off")" -v ron="$(rps_of "$on")" \
        -v p50off="$(us_of "$off" 50%)" -v p50on="$(us_of "$on" 50%)" -v p99off="$(us_of "$off" 99%)" -v p99on="$(us_of "$on" 99%)" \
        'BEGIN { printf "| %s | %d | %.0f | %.0f | %.2f | %d | %d | %+d | %d | %d | %+d |\n", label, c, roff, ron, ron / roff, p50off, p50on, p50on - p50off, p99off, p99on, p99on - p99off }'
}
mkdir -p "$ROOT/bench/results"
RESULT="$ROOT/bench/results/ratelimit-$(date -u +%Y%m%dT%H%M%SZ).md"
{
    echo "Loopback, $(nproc) cores, $(date -u +%Y-%m-%d). Redis $(redis-server --version | awk '{ print $3 }' | cut -d= -f2)."
    echo
    echo "Decisions per second in Redis (redis-benchmark, random subject among 100k; 50 clients: throughput, 1 client: round-trip latency):"
    echo
    echo "| command | clients | req/s | p50 ms | ratio to ZADD | ratio to PING |"
    echo "|---|---:|---:|---:|---:|---:|"
    for clients in 50 1; do
        for name in ping zadd script; do
            awk -v n="$name" -v c="$clients" -v r="$(rb_rps "$name-$clients")" -v p="$(rb_p50 "$name-$clients")" \
                -v z="$(rb_rps "zadd-$clients")" -v g="$(rb_rps "ping-$clients")" \
                'BEGIN { label = (n == "script") ? "limit script (EVALSHA)" : toupper(n); printf "| %s | %d | %.0f | %s | %.2f | %.2f |\n", label, c, r, p, r / z, r / g }'
        done
    done
    echo
    echo "What the API limit adds to a request (wrk -t1 -d$DURATION; latencies in microseconds; limit off = reference):"
    echo
    echo "| request | connections | req/s off | req/s on | ratio on/off | p50 off | p50 on | p50 added | p99 off | p99 on | p99 added |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for connections in 1 64; do
        row "anonymous 404, new subject per request" anon "$connections"
        row "GET /api/auth/profile, one user" profile "$connections"
    done
} >"$RESULT"
header "result (saved to ${RESULT#"$ROOT"/})"
cat "$RESULT"
