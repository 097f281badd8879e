#!/usr/bin/env bash
# HTTP benchmark on loopback: wrk against nginx serving a small static file (the reference), the
# gateway's GET /health, and an authenticated GET /api/auth/profile, all with the same wrk
# settings in one run. Prints a markdown table (also saved under bench/results/).
#
# Usage: bench/http.sh
# Environment: BENCH_LOG_LEVEL (warn; info logs every request), WRK_THREADS (1), WRK_CONNECTIONS (64),
# WRK_DURATION (10s), SKIP_BUILD=1 to reuse the
# last release build. Servers live in .data/bench/ (PostgreSQL and Redis on random free ports).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

THREADS="${WRK_THREADS:-1}"
CONNECTIONS="${WRK_CONNECTIONS:-64}"
DURATION="${WRK_DURATION:-10s}"
DATA_DIR="$ROOT/.data/bench"
WORK="$(mktemp -d /tmp/chat-bench.XXXXXX)"
GATEWAY_PID=""
NGINX_PID=""
STARTED_PG=0
STARTED_REDIS=0

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$?
    trap '' INT TERM
    [[ -n "$GATEWAY_PID" ]] && stop_child "$GATEWAY_PID" Gateway
    [[ -n "$NGINX_PID" ]] && stop_child "$NGINX_PID" nginx
    ((STARTED_REDIS)) && svc_redis_stop "$DATA_DIR"
    ((STARTED_PG)) && svc_pg_stop "$DATA_DIR"
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

header "Debian packages"
ensure_packages "${CHAT_BASE_PACKAGES[@]}" curl nginx-light wrk
ensure_swift

header "release build"
# shellcheck disable=SC2119 # no product: build everything
bench_release_build
[[ -x "$BIN_DIR/Gateway" ]] || die "$BIN_DIR/Gateway is missing"

header "PostgreSQL and Redis in .data/bench"
bench_start_services "$DATA_DIR"

BENCH_LOG_LEVEL="${BENCH_LOG_LEVEL:-warn}"
header "Gateway (CHAT_ENV=development, LOG_LEVEL=$BENCH_LOG_LEVEL)"
GATEWAY_PORT="$(free_port)"
# No API limit here: this measures the request path itself (bench/ratelimit.sh measures the limit).
env PORT="$GATEWAY_PORT" HOST=127.0.0.1 ADMIN_HOST=127.0.0.1 ADMIN_PORT=0 CHAT_ENV=development LOG_LEVEL="$BENCH_LOG_LEVEL" RATE_LIMIT_API=off \
    DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" \
    JWT_SECRET="$(head -c 48 /dev/urandom | base64 -w 0)" \
    "$BIN_DIR/Gateway" >"$WORK/gateway.log" 2>&1 &
GATEWAY_PID=$!
wait_http "$GATEWAY_PORT" /health 60 200 "$GATEWAY_PID" || {
    tail -n 30 "$WORK/gateway.log" >&2
    die "the Gateway did not come up"
}
GATEWAY="http://127.0.0.1:$GATEWAY_PORT"

TOKEN="$(bench_user_token "$GATEWAY")"
curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" "$GATEWAY/api/auth/profile" || die "profile request failed"

header "nginx (reference: worker_processes 1, static file, access_log off)"
NGINX_PORT="$(free_port)"
mkdir -p "$WORK/www" "$WORK/nginx"
printf '{"status":"ok"}\n' >"$WORK/www/health.json"
# A root-started nginx runs its worker as nobody, which must be able to read the file.
chmod 755 "$WORK" "$WORK/www"
chmod 644 "$WORK/www/health.json"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /health {
            default_type application/json;
            alias $WORK/www/health.json;
        }
    }
}
EOF
/usr/sbin/nginx -t -q -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"
/usr/sbin/nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
NGINX_PID=$!
wait_http "$NGINX_PORT" /health 10 200 "$NGINX_PID" || die "nginx did not come up (see $WORK/nginx/error.log)"

# wrk prints e.g. "Requests/sec:  12345.67" and, with --latency, "     99%    1.23ms".
run_wrk() { # <name> <url> [header]
    local name="$1" url="$2" out="$WORK/wrk-$1.txt"
    shift 2
    say "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $* $url"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" | tee "$out"
}
rps_of() { awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk-$1.txt"; }
p99_of() { awk '$1 == "99%" { print $2 }' "$WORK/wrk-$1.txt"; }
errors_of() {
    awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { for (i = 4; i <= NF; i += 2) n += $i }
         END { print n + 0 }' "$WORK/wrk-$1.txt"
}

header "wrk: nginx static file"
run_wrk nginx "http://127.0.0.1:$NGINX_PORT/health"
header "wrk: Gateway GET /health"
run_wrk health "$GATEWAY/health"
header "wrk: Gateway GET /api/auth/profile (authenticated)"
run_wrk profile "$GATEWAY/api/auth/profile" -H "Authorization: Bearer $TOKEN"

NGINX_RPS="$(rps_of nginx)"
ratio() { awk -v a="$1" -v b="$NGINX_RPS" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mkdir -p "$ROOT/bench/results"
RESULT="$ROOT/bench/results/http-$(date -u +%Y%m%dT%H%M%SZ).md"
{
    echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, loopback, $(nproc) cores, $(date -u +%Y-%m-%d)"
    echo
    echo "| target | req/s | p99 latency | ratio to nginx | errors (non-2xx or socket) |"
    echo "|---|---:|---:|---:|---:|"
    echo "| nginx static file (worker_processes 1) | $NGINX_RPS | $(p99_of nginx) | 1.00 | $(errors_of nginx) |"
    echo "| Gateway GET /health | $(rps_of health) | $(p99_of health) | $(ratio "$(rps_of health)") | $(errors_of health) |"
    echo "| Gateway GET /api/auth/profile | $(rps_of profile) | $(p99_of profile) | $(ratio "$(rps_of profile)") | $(errors_of profile) |"
} >"$RESULT"
header "result (saved to ${RESULT#"$ROOT"/})"
cat "$RESULT"
