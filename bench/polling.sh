#!/usr/bin/env bash
# Long-polling benchmark (issue 15), two parts, each against a reference measured in the same run:
#
# 1. The relay hop: one Engine.IO session over long-polling owned by gateway A; round trips of
#    `POST 42<id>["ping"]` + `GET` until the ack, sent straight to A (what a balancer routing on
#    the session id does) and to gateway B (plain balancing: B relays both requests through Redis
#    to A and the answers back). p50/p90/p99 of each, and the hop's added cost.
# 2. Sessions held over long-polling: N sessions (a GET always held, pings answered by POST) on a
#    fresh gateway, against N WebSocket sessions (ChatLoad) on another fresh gateway: RSS per
#    session and CPU while idle (Engine.IO pings running), per session, and the ratio.
#
# Prints a markdown table (also saved under bench/results/).
# Usage: bench/polling.sh
# Environment: SKIP_BUILD=1 (reuse the release build), SESSIONS (2000), ITERATIONS (2000),
#   IDLE_SECONDS (30), SETTLE_SECONDS (5), PING_INTERVAL_MS (25000).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SESSIONS="${SESSIONS:-2000}"
ITERATIONS="${ITERATIONS:-2000}"
IDLE_SECONDS="${IDLE_SECONDS:-30}"
SETTLE_SECONDS="${SETTLE_SECONDS:-5}"
PING_INTERVAL_MS="${PING_INTERVAL_MS:-25000}"
for name in SESSIONS ITERATIONS IDLE_SECONDS SETTLE_SECONDS PING_INTERVAL_MS; do
    [[ "${!name}" =~ ^[1-9][0-9]*$ ]] || die "$name must be a positive integer (got '${!name}')"
done

bench_setup polling
bench_release_build Gateway ChatLoad
bench_start_services "$DATA_DIR"
JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export JWT_SECRET
USER_BASE=3000000
PYTHON="$ROOT/.venv/bin/python"

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

start_gateway() { # <id> <route>
    bench_start_gateway "$1" "$WORK/$1.log" GATEWAY_ROUTE="$2" SOCKETIO_PING_INTERVAL_MS="$PING_INTERVAL_MS" \
        MAX_CONNECTIONS=20000 RECOVERY_WINDOW_MS=120000
}

start_gateway bench-a ga
A_PID=$GATEWAY_PID A_PORT=$GATEWAY_PORT
start_gateway bench-b gb
B_PID=$GATEWAY_PID B_PORT=$GATEWAY_PORT
bench_seed_users "$USER_BASE" $((SESSIONS + 1))

say "relay hop: $ITERATIONS round trips each, direct and relayed"
RTT="$("$PYTHON" bench/polling_client.py rtt --owner "http://127.0.0.1:$A_PORT" --other "http://127.0.0.1:$B_PORT" \
    --user-base "$USER_BASE" --iterations "$ITERATIONS")"
say "$RTT"
rtt_field() { "$PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]][sys.argv[3]])' "$RTT" "$1" "$2"; }

# Part 2 on fresh gateways: C holds polling sessions, D WebSocket sessions.
measure() { # <pid> <label> -> prints "rss_per_session_kib cpu_us_per_session_per_s connected"
    local pid=$1 before=$2 connected=$3 t0 t1 rss
    sleep "$SETTLE_SECONDS"
    t0="$(bench_cpu_ticks "$pid")"
    sleep "$IDLE_SECONDS"
    t1="$(bench_cpu_ticks "$pid")"
    rss="$(rss_kib "$pid")"
    awk -v rss="$rss" -v before="$before" -v n="$connected" -v ticks="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v s="$IDLE_SECONDS" \
        'BEGIN { printf "%.2f %.2f %d\n", (rss - before) / n, ticks / hz / s / n * 1e6, n }'
}

start_gateway bench-c gc
C_PID=$GATEWAY_PID C_PORT=$GATEWAY_PORT
C_BEFORE="$(rss_kib "$C_PID")"
say "holding $SESSIONS sessions over long-polling"
"$PYTHON" bench/polling_client.py hold --url "http://127.0.0.1:$C_PORT" --sessions "$SESSIONS" --user-base "$USER_BASE" \
    --seconds $((SETTLE_SECONDS + IDLE_SECONDS + 60)) >"$WORK/hold.log" 2>"$WORK/hold.err" &
HOLD_PID=$!
PIDS+=("$HOLD_PID")
for _ in $(seq 1 120); do grep -q '"ramp"' "$WORK/hold.log" 2>/dev/null && break; sleep 0.5; done
POLL_CONNECTED="$(bench_json_number "$WORK/hold.log" connected)"
[[ "${POLL_CONNECTED:-0}" -gt 0 ]] || { cat "$WORK/hold.err" >&2; die "no polling session connected"; }
read -r POLL_RSS POLL_CPU POLL_N < <(measure "$C_PID" "$C_BEFORE" "$POLL_CONNECTED")
kill "$HOLD_PID" 2>/dev/null || true

start_gateway bench-d gd
D_PID=$GATEWAY_PID D_PORT=$GATEWAY_PORT
D_BEFORE="$(rss_kib "$D_PID")"
say "holding $SESSIONS sessions over WebSocket"
JWT_SECRET="$JWT_SECRET" "$BIN_DIR/ChatLoad" --url "ws://127.0.0.1:$D_PORT" --connections "$SESSIONS" --user-base "$USER_BASE" \
    --hold forever --rate 2000 --max-in-flight 200 >"$WORK/chatload.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 120); do grep -q "ramp complete" "$WORK/chatload.log" 2>/dev/null && break; sleep 0.5; done
WS_CONNECTED="$(grep -o 'ramp complete: connected=[0-9]*' "$WORK/chatload.log" | tail -n 1 | cut -d= -f2)"
[[ "${WS_CONNECTED:-0}" -gt 0 ]] || { tail "$WORK/chatload.log" >&2; die "no WebSocket session connected"; }
read -r WS_RSS WS_CPU WS_N < <(measure "$D_PID" "$D_BEFORE" "$WS_CONNECTED")

mkdir -p bench/results
RESULT="bench/results/polling-$(date -u +%Y%m%dT%H%M%SZ).md"
{
    echo "### Long-polling ($(date -u +%Y-%m-%d), $(nproc) cores, release build)"
    echo
    echo "Relay hop: one polling session on gateway A; \`POST 42<id>[\"ping\"]\` + \`GET\` until the ack, $ITERATIONS round trips each way."
    echo
    echo "| path | p50 ms | p90 ms | p99 ms | mean ms |"
    echo "|---|---:|---:|---:|---:|"
    for kind in direct relayed; do
        echo "| $kind | $(rtt_field $kind p50) | $(rtt_field $kind p90) | $(rtt_field $kind p99) | $(rtt_field $kind mean) |"
    done
    echo
    echo "Sessions held idle for ${IDLE_SECONDS} s (pings every $((PING_INTERVAL_MS / 1000)) s), per session, on one gateway each:"
    echo
    echo "| transport | sessions | gateway RSS per session (KiB) | gateway CPU per session (µs/s) |"
    echo "|---|---:|---:|---:|"
    echo "| long-polling | $POLL_N | $POLL_RSS | $POLL_CPU |"
    echo "| WebSocket (reference) | $WS_N | $WS_RSS | $WS_CPU |"
    awk -v a="$POLL_RSS" -v b="$WS_RSS" -v c="$POLL_CPU" -v d="$WS_CPU" \
        'BEGIN { printf "| ratio | | %.2fx | %.2fx |\n", (b > 0 ? a / b : 0), (d > 0 ? c / d : 0) }'
} | tee "$RESULT"
say "saved $RESULT"
