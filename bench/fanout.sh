#!/usr/bin/env bash
# Room fan-out benchmark (issue 13): rooms of 10, 100, 1,000 and 5,000 members whose sockets are
# held by ChatLoad, half on each of two gateways; room events are published on the room's channel
# at a fixed rate, exactly as a worker publishes a room message (one PUBLISH per message), and
# ChatLoad measures every delivery's latency from the publisher's clock (same host,
# CLOCK_MONOTONIC). Reported per room size: deliveries per second, publish-to-socket latency
# (p50, p99, p99.9, max), and the gateways' CPU per delivery and deliveries per gateway core-second.
# The reference, measured in the same run for each row: as many plain Redis subscribers of the same
# channel (ChatLoad --redis-url), driven by the same publisher: Redis's own PUBLISH fan-out rate,
# latency and CPU per delivery to that many subscribers.
#
# This isolates the fan-out path (Redis → gateways → sockets); the message path before it (gateway,
# stream, worker, Postgres) is the messages benchmark's (issue 17).
#
# Usage: bench/fanout.sh [SIZE ...]            (default: 10 100 1000 5000)
# Environment:
#   SKIP_BUILD=1             reuse the last release build
#   DURATION (10)            seconds of publishing per size
#   DELIVERIES (100000)      deliveries per second offered (a space-separated list sweeps them):
#                            the publish rate is DELIVERIES / size, at most MAX_RATE messages/s
#   MAX_RATE (2000)          most messages per second the publisher sends
#   GATEWAY_BIN              run this Gateway binary instead of this tree's (a before/after comparison)
# Postgres and Redis live in .data/bench-fanout/ (wiped each run).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZES=("$@")
((${#SIZES[@]} > 0)) || SIZES=(10 100 1000 5000)
for n in "${SIZES[@]}"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] && ((n >= 2)) || die "room sizes must be integers of at least 2 (got '$n')"
done
DURATION="${DURATION:-10}"
read -r -a OFFERED <<<"${DELIVERIES:-100000}"
for offered in "${OFFERED[@]}"; do [[ "$offered" =~ ^[1-9][0-9]*$ ]] || die "DELIVERIES must be positive integers (got '$offered')"; done
MAX_RATE="${MAX_RATE:-2000}"
USER_BASE=3000000
bench_setup fanout

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
    bench_start_gateway "fanout-gw-$g" "$WORK/gateway-$g.log"
    GATEWAYS+=("$GATEWAY_PID")
    GATEWAY_PORTS+=("$GATEWAY_PORT")
done

latency() { grep -o "\"eventLatencyMs\":{[^}]*}" "$1" | grep -o "\"$2\":[0-9.]*" | cut -d: -f2; }

# One measurement: publish at $1 messages/s to room $2 while the processes in LOADS hold the
# sockets; sets M_EVENTS, M_MS, M_GATEWAY_TICKS, M_REDIS_TICKS and M_PUBLISHED.
measure() {
    local rate=$1 room=$2 before_gw=0 before_redis after_gw=0 after_redis start_ns pid
    for pid in "${GATEWAYS[@]}"; do before_gw=$((before_gw + $(bench_cpu_ticks "$pid"))); done
    before_redis="$(bench_cpu_ticks "$REDIS_PID")"
    start_ns="$(date +%s%N)"
    M_PUBLISHED="$("$ROOT/.venv/bin/python" bench/fanout_publish.py "$REDIS_URL" "$room" "$rate" "$DURATION")"
    sleep 2  # the last deliveries drain
    for pid in "${GATEWAYS[@]}"; do after_gw=$((after_gw + $(bench_cpu_ticks "$pid"))); done
    after_redis="$(bench_cpu_ticks "$REDIS_PID")"
    M_MS=$((($(date +%s%N) - start_ns) / 1000000 - 2000))
    M_GATEWAY_TICKS=$((after_gw - before_gw))
    M_REDIS_TICKS=$((after_redis - before_redis))
}

# Waits for every ChatLoad in LOADS to finish its ramp (log files LOAD_LOGS).
wait_ramps() {
    local log deadline
    for log in "${LOAD_LOGS[@]}"; do
        deadline=$((SECONDS + 120))
        until grep -q '^ramp complete' "$log"; do
            ((SECONDS < deadline)) || { tail -n 5 "$log" >&2; die "ChatLoad ($log) did not finish its ramp"; }
            sleep 0.2
        done
    done
    sleep 1
}

# Stops the ChatLoads in LOADS and sums their measured events into M_EVENTS.
stop_loads() {
    local pid log
    for pid in "${LOADS[@]}"; do kill -TERM "$pid"; done
    for pid in "${LOADS[@]}"; do wait "$pid" || true; done
    M_EVENTS=0
    for log in "${LOAD_LOGS[@]}"; do M_EVENTS=$((M_EVENTS + $(bench_json_number "$log" eventsMeasured))); done
}

per_second() { awk -v e="$1" -v ms="$2" 'BEGIN { printf "%.0f", e * 1000 / ms }'; }
micros_per() { awk -v t="$1" -v h="$CLK_TCK" -v e="$2" 'BEGIN { printf "%.2f", e ? t / h * 1e6 / e : 0 }'; }
per_core() { awk -v t="$1" -v h="$CLK_TCK" -v e="$2" 'BEGIN { printf "%.0f", t ? e / (t / h) : 0 }'; }

REDIS_PID="$(svc_redis_pid "$DATA_DIR")"
[[ -n "$REDIS_PID" ]] || die "no Redis pid"
ROWS=()
REFERENCE_ROWS=()
for size in "${SIZES[@]}"; do
    header "room of $size members"
    # The members exist and form one room (as the workers would have written it).
    room="$(bench_psql <<SQL
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
    for offered in "${OFFERED[@]}"; do
        rate=$((offered / size))
        ((rate > MAX_RATE)) && rate=$MAX_RATE
        ((rate < 1)) && rate=1
        expected_label="$rate msg/s"

        # The gateways: half of the members' sockets on each.
        LOADS=()
        LOAD_LOGS=()
        for g in 1 2; do
            count=$half
            base=$USER_BASE
            if ((g == 2)); then count=$((size - half)); base=$((USER_BASE + half)); fi
            log="$WORK/load-$size-$offered-$g.log"
            JWT_SECRET="$JWT_SECRET" "$BIN_DIR/ChatLoad" --url "ws://127.0.0.1:${GATEWAY_PORTS[$((g - 1))]}" --connections "$count" \
                --user-base "$base" --hold forever --rate 5000 --latency-field sentAt >"$log" 2>&1 &
            PIDS+=("$!")
            LOADS+=("$!")
            LOAD_LOGS+=("$log")
        done
        wait_ramps
        measure "$rate" "$room"
        stop_loads
        expected=$((M_PUBLISHED * size))
        first="${LOAD_LOGS[0]}"
        say "size $size at $expected_label: delivered $M_EVENTS of $expected, gateway CPU $(micros_per "$M_GATEWAY_TICKS" "$M_EVENTS") µs per delivery, p99 $(latency "$first" p99) ms"
        gateway_per_core="$(per_core "$M_GATEWAY_TICKS" "$M_EVENTS")"
        ROWS+=("| $size | $rate | $M_EVENTS / $expected | $(per_second "$M_EVENTS" "$M_MS") | $(latency "$first" p50) | $(latency "$first" p99) | $(latency "$first" p999) | $(latency "$first" max) | $(micros_per "$M_GATEWAY_TICKS" "$M_EVENTS") | $gateway_per_core | $(micros_per "$M_REDIS_TICKS" "$M_EVENTS") |")

        # The reference: as many plain Redis subscribers of the same channel, the same publisher.
        LOADS=()
        LOAD_LOGS=("$WORK/redis-$size-$offered.log")
        "$BIN_DIR/ChatLoad" --redis-url "$REDIS_URL" --channel "chat:room:$room" --connections "$size" \
            --latency-field sentAt >"${LOAD_LOGS[0]}" 2>&1 &
        PIDS+=("$!")
        LOADS+=("$!")
        wait_ramps
        measure "$rate" "$room"
        stop_loads
        redis_per_core="$(per_core "$M_REDIS_TICKS" "$M_EVENTS")"
        ratio="$(awk -v g="$gateway_per_core" -v r="$redis_per_core" 'BEGIN { printf "%.2f", r ? g / r : 0 }')"
        log="${LOAD_LOGS[0]}"
        REFERENCE_ROWS+=("| $size | $rate | $M_EVENTS / $((M_PUBLISHED * size)) | $(per_second "$M_EVENTS" "$M_MS") | $(latency "$log" p50) | $(latency "$log" p99) | $(micros_per "$M_REDIS_TICKS" "$M_EVENTS") | $redis_per_core | $ratio |")
        say "size $size at $expected_label, raw Redis: delivered $M_EVENTS, gateway/Redis deliveries per core-second $ratio"
    done
done

mkdir -p bench/results
RESULT="bench/results/fanout-$(date -u +%Y%m%dT%H%M%SZ).md"
{
    echo "Through the gateways (room channel → two gateways → sockets):"
    echo
    echo "| members | messages/s | delivered / expected | deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | gateway CPU µs / delivery | deliveries / gateway core-second | Redis CPU µs / delivery |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Reference, same run: as many plain Redis subscribers of the channel (one connection each), the same publisher:"
    echo
    echo "| subscribers | messages/s | delivered / expected | deliveries/s | p50 ms | p99 ms | Redis CPU µs / delivery | deliveries / Redis core-second | gateway ÷ Redis per core |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${REFERENCE_ROWS[@]}"
    echo
    echo "One host: gateways, ChatLoad, Redis and the publisher share $(nproc) CPUs; ${DURATION}s of publishing per row; latency from the publisher's clock to the sockets of gateway 1's ChatLoad (to every subscriber in the reference)."
} | tee "$RESULT"
say "saved $RESULT"
