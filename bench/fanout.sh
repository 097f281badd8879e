#!/usr/bin/env bash
# Room fan-out benchmark (issue 13): rooms of 10, 100, 1,000 and 5,000 members whose sockets are
# held by ChatLoad, half on each of two gateways; room events are published on the room's channel
# at a fixed rate, exactly as a worker publishes a room message (one PUBLISH per message), and
# ChatLoad measures every delivery's latency from the publisher's clock (same host,
# CLOCK_MONOTONIC). Reported per room size: deliveries per second, publish-to-socket latency
# (p50, p99, p99.9, max), and the gateways' CPU per delivery and deliveries per gateway core-second.
#
# This isolates the fan-out path (Redis → gateways → sockets); the message path before it (gateway,
# stream, worker, Postgres) is the messages benchmark's (issue 17).
#
# Usage: bench/fanout.sh [SIZE ...]            (default: 10 100 1000 5000)
# Environment:
#   SKIP_BUILD=1             reuse the last release build
#   DURATION (10)            seconds of publishing per size
#   DELIVERIES (100000)      deliveries per second offered: the publish rate is DELIVERIES / size,
#                            at most MAX_RATE messages per second
#   MAX_RATE (2000)          most messages per second the publisher sends
# Postgres and Redis live in .data/bench-fanout/ (wiped each run).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

SIZES=("$@")
((${#SIZES[@]} > 0)) || SIZES=(10 100 1000 5000)
for n in "${SIZES[@]}"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] && ((n >= 2)) || die "room sizes must be integers of at least 2 (got '$n')"
done
DURATION="${DURATION:-10}"
DELIVERIES="${DELIVERIES:-100000}"
MAX_RATE="${MAX_RATE:-2000}"
USER_BASE=3000000
DATA_DIR="$ROOT/.data/bench-fanout"
WORK="$(mktemp -d /tmp/chat-bench-fanout.XXXXXX)"
STARTED_PG=0
STARTED_REDIS=0
PIDS=()

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local status=$?
    trap '' INT TERM
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ((STARTED_REDIS)) && svc_redis_stop "$DATA_DIR"
    ((STARTED_PG)) && svc_pg_stop "$DATA_DIR"
    ((status == 0)) || say "logs kept in $WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ -x "$ROOT/.venv/bin/python" ]] || die "no .venv: run scripts/test once (it creates .venv with redis-py)"

header "release build"
bench_release_build Gateway ChatLoad

header "PostgreSQL and Redis in .data/bench-fanout"
svc_wipe "$DATA_DIR"
bench_start_services "$DATA_DIR"
JWT_SECRET="$(head -c 48 /dev/urandom | base64 -w 0)"
CLK_TCK="$(getconf CLK_TCK)"
ulimit -Sn "$(ulimit -Hn)"

header "two gateways"
GATEWAY_PORTS=()
GATEWAYS=()
for g in 1 2; do
    port="$(free_port)"
    env PORT="$port" HOST=127.0.0.1 ADMIN_HOST=127.0.0.1 ADMIN_PORT=0 CHAT_ENV=production LOG_LEVEL=warn GATEWAY_ID="fanout-gw-$g" \
        DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" JWT_SECRET="$JWT_SECRET" MAX_CONNECTIONS_PER_IP=100000 \
        RATE_LIMIT_API=off SOCKET_EVENT_RATE=100000 SOCKET_EVENT_BURST=100000 \
        "$BIN_DIR/Gateway" >"$WORK/gateway-$g.log" 2>&1 &
    PIDS+=("$!")
    GATEWAYS+=("$!")
    GATEWAY_PORTS+=("$port")
    wait_http "$port" /health 60 200 || { tail -n 30 "$WORK/gateway-$g.log" >&2; die "gateway $g did not come up"; }
done

psql_bench() { "$SVC_PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$DATABASE_URL" "$@"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
json_number() { grep -o "\"$2\":[0-9.]*" "$1" | tail -n 1 | cut -d: -f2; }
latency() { grep -o "\"eventLatencyMs\":{[^}]*}" "$1" | grep -o "\"$2\":[0-9.]*" | cut -d: -f2; }

ROWS=()
for size in "${SIZES[@]}"; do
    header "room of $size members"
    # The members exist and form one room (as the workers would have written it).
    room="$(psql_bench <<SQL
INSERT INTO users (id, username, email, password_hash, display_name) OVERRIDING SYSTEM VALUE
SELECT g, 'fan' || g, 'fan' || g || '@bench.invalid', 'x', 'fan' || g
FROM generate_series($USER_BASE::bigint, $USER_BASE::bigint + $size - 1) AS g ON CONFLICT DO NOTHING;
WITH room AS (
    INSERT INTO conversations (kind, name, member_count) VALUES ('room', 'fan-out $size', $size) RETURNING id
), members AS (
    INSERT INTO conversation_members (conversation_id, user_id) SELECT room.id, g FROM room,
    generate_series($USER_BASE::bigint, $USER_BASE::bigint + $size - 1) AS g
)
SELECT id FROM room;
SQL
)"
    half=$((size / 2))
    loads=()
    for g in 1 2; do
        count=$half
        base=$USER_BASE
        if ((g == 2)); then count=$((size - half)); base=$((USER_BASE + half)); fi
        JWT_SECRET="$JWT_SECRET" "$BIN_DIR/ChatLoad" --url "ws://127.0.0.1:${GATEWAY_PORTS[$((g - 1))]}" --connections "$count" \
            --user-base "$base" --hold forever --rate 5000 --latency-field sentAt >"$WORK/load-$size-$g.log" 2>&1 &
        PIDS+=("$!")
        loads+=("$!")
    done
    for g in 1 2; do
        deadline=$((SECONDS + 120))
        until grep -q '^ramp complete' "$WORK/load-$size-$g.log"; do
            ((SECONDS < deadline)) || { tail -n 5 "$WORK/load-$size-$g.log" >&2; die "ChatLoad $g did not finish its ramp"; }
            sleep 0.2
        done
    done
    sleep 1
    rate=$((DELIVERIES / size))
    ((rate > MAX_RATE)) && rate=$MAX_RATE
    ((rate < 1)) && rate=1
    before=0
    for pid in "${GATEWAYS[@]}"; do before=$((before + $(cpu_ticks "$pid"))); done
    start_ns="$(date +%s%N)"
    published="$("$ROOT/.venv/bin/python" bench/fanout_publish.py "$REDIS_URL" "$room" "$rate" "$DURATION")"
    sleep 2  # the last deliveries drain
    after=0
    for pid in "${GATEWAYS[@]}"; do after=$((after + $(cpu_ticks "$pid"))); done
    elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000 - 2000))
    for pid in "${loads[@]}"; do kill -TERM "$pid"; done
    for pid in "${loads[@]}"; do wait "$pid" || true; done
    events=0
    for g in 1 2; do events=$((events + $(json_number "$WORK/load-$size-$g.log" eventsMeasured))); done
    expected=$((published * size))
    cpu_seconds="$(awk -v t=$((after - before)) -v h="$CLK_TCK" 'BEGIN { printf "%.2f", t / h }')"
    per_second="$(awk -v e="$events" -v ms="$elapsed_ms" 'BEGIN { printf "%.0f", e * 1000 / ms }')"
    us_per="$(awk -v t=$((after - before)) -v h="$CLK_TCK" -v e="$events" 'BEGIN { printf "%.2f", e ? t / h * 1e6 / e : 0 }')"
    per_core="$(awk -v t=$((after - before)) -v h="$CLK_TCK" -v e="$events" 'BEGIN { printf "%.0f", t ? e / (t / h) : 0 }')"
    p50="$(latency "$WORK/load-$size-1.log" p50)"; p99="$(latency "$WORK/load-$size-1.log" p99)"
    p999="$(latency "$WORK/load-$size-1.log" p999)"; max="$(latency "$WORK/load-$size-1.log" max)"
    say "size $size: published $published at $rate/s, delivered $events of $expected, gateway CPU ${cpu_seconds}s, p99 ${p99} ms (gateway 1's sockets)"
    ROWS+=("| $size | $rate | $events / $expected | $per_second | $p50 | $p99 | $p999 | $max | $us_per | $per_core |")
done

mkdir -p bench/results
RESULT="bench/results/fanout-$(date -u +%Y%m%dT%H%M%SZ).md"
{
    echo "| members | messages/s | delivered / expected | deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | gateway CPU µs / delivery | deliveries / gateway core-second |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Two gateways on one host with ChatLoad, Redis and the publisher ($(nproc) CPUs); ${DURATION}s of publishing per size; latency from the publisher's clock to the socket of gateway 1's connections."
} | tee "$RESULT"
say "saved $RESULT"
