#!/usr/bin/env bash
# The dialect layer's cost (issue 16): gateway CPU per message for sockets speaking seed 002
# (`private_message` in and out, translated at the edge) against native sockets
# (`sendMessage` / `receiveMessage`), in the same run, alternating phases on one gateway and one
# worker (release build, RATE_LIMIT_MESSAGES=off). CPU is the gateway's on-CPU time from
# /proc/<pid>/schedstat (nanoseconds) over each phase, divided by the messages delivered.
# Prints a markdown table (also saved under bench/results/).
# Usage: bench/dialects.sh      Environment: SKIP_BUILD=1, PAIRS (20), MESSAGES (6000), RATE (400), ROUNDS (2)
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PAIRS="${PAIRS:-20}"
MESSAGES="${MESSAGES:-6000}"
RATE="${RATE:-400}"
ROUNDS="${ROUNDS:-2}"
for name in PAIRS MESSAGES RATE ROUNDS; do
    [[ "${!name}" =~ ^[1-9][0-9]*$ ]] || die "$name must be a positive integer (got '${!name}')"
done

bench_setup dialects
bench_release_build Gateway MessageWorker
bench_start_services "$DATA_DIR"
JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export JWT_SECRET
PYTHON="$ROOT/.venv/bin/python"

env ADMIN_PORT=0 ADMIN_HOST=127.0.0.1 CHAT_ENV=production LOG_LEVEL=warn WORKER_ID=bench-worker DATABASE_URL="$DATABASE_URL" \
    REDIS_URL="$REDIS_URL" RATE_LIMIT_MESSAGES=off "$BIN_DIR/MessageWorker" >"$WORK/worker.log" 2>&1 &
PIDS+=("$!")
bench_start_gateway bench-gw "$WORK/gateway.log"
GW_PID=$GATEWAY_PID
USERS=$((2 * PAIRS * 2 * ROUNDS))
BASE=4000000
bench_seed_users "$BASE" $((USERS + 1))

oncpu_ns() { awk '{ print $1 }' "/proc/$1/schedstat"; }
declare -A TOTAL_NS TOTAL_MSGS
phase=0
for round in $(seq 1 "$ROUNDS"); do
    for dialect in native seed002; do
        base=$((BASE + phase * 2 * PAIRS))
        phase=$((phase + 1))
        before="$(oncpu_ns "$GW_PID")"
        result="$("$PYTHON" bench/dialect_load.py --url "http://127.0.0.1:$GATEWAY_PORT" --dialect "$dialect" --pairs "$PAIRS" \
            --messages "$MESSAGES" --rate "$RATE" --user-base "$base")"
        after="$(oncpu_ns "$GW_PID")"
        received="$(printf '%s' "$result" | grep -o '"received": [0-9]*' | grep -o '[0-9]*$')"
        say "round $round $dialect: $result, gateway $(((after - before) / 1000000)) ms on CPU"
        TOTAL_NS[$dialect]=$(( ${TOTAL_NS[$dialect]:-0} + after - before ))
        TOTAL_MSGS[$dialect]=$(( ${TOTAL_MSGS[$dialect]:-0} + received ))
    done
done

mkdir -p bench/results
RESULT="bench/results/dialects-$(date -u +%Y%m%dT%H%M%SZ).md"
{
    echo "### Dialect layer cost ($(date -u +%Y-%m-%d), $(nproc) cores, release build)"
    echo
    echo "$PAIRS sender/receiver pairs, $MESSAGES messages per phase at $RATE/s, $ROUNDS rounds alternating; gateway CPU per delivered message (connect/disconnect included in each phase's window)."
    echo
    echo "| sockets | messages delivered | gateway CPU per message |"
    echo "|---|---:|---:|"
    for dialect in native seed002; do
        awk -v d="$dialect" -v ns="${TOTAL_NS[$dialect]}" -v n="${TOTAL_MSGS[$dialect]}" 'BEGIN { printf "| %s | %d | %.1f µs |\n", d, n, ns / n / 1000 }'
    done
    awk -v a="${TOTAL_NS[seed002]}" -v an="${TOTAL_MSGS[seed002]}" -v b="${TOTAL_NS[native]}" -v bn="${TOTAL_MSGS[native]}" \
        'BEGIN { printf "| ratio seed002 / native | | %.3f |\n", (a / an) / (b / bn) }'
} | tee "$RESULT"
say "saved $RESULT"
