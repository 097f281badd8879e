#!/usr/bin/env bash
# Presence at room scale (issue 13): USERS users who are all members of one room connect within
# about a minute (two ChatLoads, half on each of two gateways), twice in one run:
#
#   subscriptions  the product's rule: room members are not contacts; each client subscribes to
#                  the presence of the WATCH members it shows (presenceSubscribe) and hears only those
#   contacts       the seeds' rule, applied to the same users (PRESENCE_ROOM_CONTACTS=on): every room
#                  member is a contact, so each connect is announced to up to 5,000 of them and gets
#                  their online list
#
# Reported per rule, per connect: Redis commands (all, and PUBLISH) from INFO commandstats, events
# the clients received, and CPU of the gateways, Redis and Postgres; plus the slowest connects.
#
# Usage: bench/presence.sh
# Environment:
#   SKIP_BUILD=1   reuse the last release build
#   USERS (5000)   room members, all connecting
#   SECONDS_TO_CONNECT (60)  the connect ramp: USERS / this connects per second
#   WATCH (50)     presence subscriptions per client under the subscription rule
#   SETTLE (10)    seconds after the ramp before the counters are read (announcements drain)
# Postgres and Redis live in .data/bench-presence/ (wiped each run).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

USERS="${USERS:-5000}"
SECONDS_TO_CONNECT="${SECONDS_TO_CONNECT:-60}"
WATCH="${WATCH:-50}"
SETTLE="${SETTLE:-10}"
for value in "$USERS" "$SECONDS_TO_CONNECT" "$SETTLE"; do [[ "$value" =~ ^[1-9][0-9]*$ ]] || die "USERS, SECONDS_TO_CONNECT and SETTLE must be positive integers"; done
[[ "$WATCH" =~ ^[0-9]+$ ]] && ((WATCH <= 500)) || die "WATCH must be 0-500"
((USERS >= 2)) || die "USERS must be at least 2"
USER_BASE=4000000
bench_setup presence

header "release build"
bench_release_build Gateway ChatLoad

header "PostgreSQL and Redis in .data/bench-presence"
svc_wipe "$DATA_DIR"
bench_start_services "$DATA_DIR"
JWT_SECRET="$(head -c 48 /dev/urandom | base64 -w 0)"
CLK_TCK="$(getconf CLK_TCK)"
ulimit -Sn "$(ulimit -Hn)"
REDIS_PID="$(svc_redis_pid "$DATA_DIR")"
[[ -n "$REDIS_PID" ]] || die "no Redis pid"

# CPU ticks of every Postgres process of this data directory (the postmaster's children).
postgres_ticks() {
    local total=0 pid postmaster
    postmaster="$(svc_pg_pid "$DATA_DIR")"
    for pid in $(pgrep -P "$postmaster") "$postmaster"; do total=$((total + $(bench_cpu_ticks "$pid"))); done
    echo "$total"
}
redis_info() { # <all|top|a command name>: calls since the reset (commands Lua scripts run included)
    "$ROOT/.venv/bin/python" - "$REDIS_URL" "$1" <<'PY'
import sys
import redis
stats = redis.Redis.from_url(sys.argv[1]).info("commandstats")
field = sys.argv[2]
if field == "all":
    print(sum(v["calls"] for v in stats.values()))
elif field == "top":
    top = sorted(stats.items(), key=lambda item: -item[1]["calls"])[:6]
    print(", ".join(f"{name.removeprefix('cmdstat_')} {value['calls']}" for name, value in top))
else:
    print(stats.get(f"cmdstat_{field}", {}).get("calls", 0))
PY
}
redis_reset() { "$ROOT/.venv/bin/python" -c "import sys, redis; redis.Redis.from_url(sys.argv[1]).config_resetstat()" "$REDIS_URL"; }
status_field() { grep '^t=' "$1" | tail -n 1 | grep -o " $2=[0-9]*" | cut -d= -f2; }
connect_latency() { grep -o "\"connectLatencyMs\":{[^}]*}" "$1" | grep -o "\"$2\":[0-9.]*" | cut -d: -f2; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b ? a / b : 0 }'; }
ms_per() { awk -v t="$1" -v h="$CLK_TCK" -v n="$2" 'BEGIN { printf "%.2f", n ? t / h * 1000 / n : 0 }'; }

header "$USERS users in one room"
env CHAT_ENV=production LOG_LEVEL=warn DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" JWT_SECRET="$JWT_SECRET" \
    "$BIN_DIR/Gateway" --migrate-only >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log" >&2; die "migrations failed"; }
bench_psql <<SQL >/dev/null
INSERT INTO users (id, username, email, password_hash, display_name) OVERRIDING SYSTEM VALUE
SELECT g, 'pres' || g, 'pres' || g || '@bench.invalid', 'x', 'pres' || g
FROM generate_series($USER_BASE::bigint, $USER_BASE::bigint + $USERS - 1) AS g;
WITH room AS (
    INSERT INTO conversations (kind, name, member_count) VALUES ('room', 'presence', $USERS) RETURNING id
)
INSERT INTO conversation_members (conversation_id, user_id) SELECT room.id, g FROM room,
generate_series($USER_BASE::bigint, $USER_BASE::bigint + $USERS - 1) AS g;
SQL

ROWS=()
NOTES=()
for rule in subscriptions contacts; do
    header "rule: $rule"
    room_contacts=off
    watch=$WATCH
    if [[ "$rule" == contacts ]]; then room_contacts=on; watch=0; fi
    GATEWAYS=()
    PORTS=()
    for g in 1 2; do
        bench_start_gateway "presence-$rule-$g" "$WORK/gateway-$rule-$g.log" PRESENCE_ROOM_CONTACTS="$room_contacts"
        GATEWAYS+=("$GATEWAY_PID")
        PORTS+=("$GATEWAY_PORT")
    done
    sleep 1
    redis_reset
    gw_before=0
    for pid in "${GATEWAYS[@]}"; do gw_before=$((gw_before + $(bench_cpu_ticks "$pid"))); done
    redis_before="$(bench_cpu_ticks "$REDIS_PID")"
    pg_before="$(postgres_ticks)"
    half=$((USERS / 2))
    per_load_rate=$(((USERS + 2 * SECONDS_TO_CONNECT - 1) / (2 * SECONDS_TO_CONNECT)))
    LOADS=()
    LOGS=()
    start_ns="$(date +%s%N)"
    for g in 1 2; do
        count=$half
        base=$USER_BASE
        if ((g == 2)); then count=$((USERS - half)); base=$((USER_BASE + half)); fi
        log="$WORK/load-$rule-$g.log"
        JWT_SECRET="$JWT_SECRET" "$BIN_DIR/ChatLoad" --url "ws://127.0.0.1:${PORTS[$((g - 1))]}" --connections "$count" \
            --user-base "$base" --hold forever --rate "$per_load_rate" --max-in-flight 200 \
            --watch "$watch" --watch-range "$USER_BASE:$USERS" >"$log" 2>&1 &
        PIDS+=("$!")
        LOADS+=("$!")
        LOGS+=("$log")
    done
    for log in "${LOGS[@]}"; do
        deadline=$((SECONDS + SECONDS_TO_CONNECT + 240))
        until grep -q '^ramp complete' "$log"; do
            ((SECONDS < deadline)) || { tail -n 5 "$log" >&2; die "ChatLoad ($log) did not finish its ramp"; }
            sleep 0.5
        done
    done
    ramp_ms=$((($(date +%s%N) - start_ns) / 1000000))
    sleep "$SETTLE"
    gw_after=0
    for pid in "${GATEWAYS[@]}"; do gw_after=$((gw_after + $(bench_cpu_ticks "$pid"))); done
    redis_after="$(bench_cpu_ticks "$REDIS_PID")"
    pg_after="$(postgres_ticks)"
    commands="$(redis_info all)"
    publishes="$(redis_info publish)"
    NOTES+=("$rule: Redis calls by command: $(redis_info top)")
    packets=0
    connected=0
    for log in "${LOGS[@]}"; do
        packets=$((packets + $(status_field "$log" packets)))
        connected=$((connected + $(status_field "$log" connected)))
    done
    for pid in "${LOADS[@]}"; do kill -TERM "$pid"; done
    for pid in "${LOADS[@]}"; do wait "$pid" || true; done
    dropped=0
    for log in "${LOGS[@]}"; do dropped=$((dropped + $(bench_json_number "$log" dropped))); done
    p99="$(connect_latency "${LOGS[0]}" p99)"
    max="$(connect_latency "${LOGS[0]}" max)"
    for pid in "${GATEWAYS[@]}"; do kill -TERM "$pid"; done
    for pid in "${GATEWAYS[@]}"; do wait "$pid" || true; done
    gateway_ms="$(ms_per $((gw_after - gw_before)) "$connected")"
    say "$rule: $connected connected in $((ramp_ms / 1000)) s, $(ratio "$commands" "$connected") Redis commands and $(ratio "$packets" "$connected") events per connect, gateway CPU $gateway_ms ms per connect"
    ROWS+=("| $rule | $connected / $USERS | $dropped | $(awk -v ms="$ramp_ms" 'BEGIN { printf "%.1f", ms / 1000 }') | $(ratio "$commands" "$connected") | $(ratio "$publishes" "$connected") | $(ratio "$packets" "$connected") | $gateway_ms | $(ms_per $((redis_after - redis_before)) "$connected") | $(ms_per $((pg_after - pg_before)) "$connected") | $p99 | $max |")
done

mkdir -p bench/results
RESULT="bench/results/presence-$(date -u +%Y%m%dT%H%M%SZ).md"
{
    echo "| rule | connected | dropped | ramp s | Redis commands / connect | PUBLISH / connect | events received / connect | gateway CPU ms / connect | Redis CPU ms / connect | Postgres CPU ms / connect | connect p99 ms | connect max ms |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    printf '%s\n\n' "${NOTES[@]}"
    echo "$USERS members of one room connect over about ${SECONDS_TO_CONNECT}s (two ChatLoads, two gateways, one host with $(nproc) CPUs); counters read ${SETTLE}s after the last connect. subscriptions: each client watches $WATCH members (presenceSubscribe); contacts: PRESENCE_ROOM_CONTACTS=on, no subscriptions."
} | tee "$RESULT"
say "saved $RESULT"
