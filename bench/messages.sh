#!/usr/bin/env bash
# Messages benchmark (issue 17, first part): send -> persist -> deliver, measured from outside.
# Two gateways (senders on one, receivers on the other), two workers, release build, durable
# commits (fsync on, synchronous_commit on). ChatLoad --message-rate drives PAIRS sender/receiver
# pairs open loop at each offered rate of RATES for SECONDS; per rate it reports the acknowledged
# throughput, ack and delivery latency from each message's intended send time (p50, p99, p99.9),
# errors by code, and the CPU each process spent per acknowledged message over the window
# (/proc/<pid>/stat: both gateways, both workers, Redis, every Postgres process).
# References measured in the same run: the raw Postgres insert of message-shaped rows in batches
# of BATCH (pgbench, custom script, the same server and commit settings) and raw Redis XADD and
# PUBLISH (redis-benchmark, pipelined). The message rate limit is a server setting the benchmark
# turns off (RATE_LIMIT_MESSAGES=off); the report says so.
#
# The seeds' stack (../shared/peer: python-socketio with its Redis manager and Postgres, two
# instances, senders on one and receivers on the other) is driven by the same generator on the
# same servers at PEER_RATES, and the best throughputs are compared.
#
# Not yet (issue 17): the rooms sweep, plots, the soak.
#
# Usage: bench/messages.sh
# Environment: RATES ("1000 2000 4000 8000 12000"), PEER_RATES ("250 500 1000 1500"), P99_BOUND_MS
# (500: the throughput compared is the highest acknowledged rate whose ack p99 stays under it),
# CHAT_SHARED_DIR (the team's shared folder holding peer/; default: next to this repository), SECONDS_PER_RATE (10), PAIRS (50), BATCH (100),
# SKIP_BUILD=1 reuses the last release build. Postgres and Redis live in .data/bench-messages/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

RATES="${RATES:-1000 2000 4000 8000 12000}"
SECONDS_PER_RATE="${SECONDS_PER_RATE:-10}"
PAIRS="${PAIRS:-50}"
BATCH="${BATCH:-100}"
for name in SECONDS_PER_RATE PAIRS BATCH; do
    [[ "${!name}" =~ ^[1-9][0-9]*$ ]] || die "$name must be a positive integer (got '${!name}')"
done
PEER_RATES="${PEER_RATES:-250 500 1000 1500}"
for rate in $RATES $PEER_RATES; do [[ "$rate" =~ ^[1-9][0-9]*$ ]] || die "RATES and PEER_RATES must be positive integers (got '$rate')"; done
SHARED="${CHAT_SHARED_DIR:-$ROOT/../shared}"
if [[ ! -f "$SHARED/peer/peer.py" ]]; then
    origin="$(git -C "$ROOT" config --get remote.origin.url || true)"
    [[ -n "$origin" && -f "$origin/../shared/peer/peer.py" ]] && SHARED="$origin/../shared"
fi
[[ -f "$SHARED/peer/peer.py" ]] || die "the seeds' stack peer was not found ($SHARED/peer/peer.py): set CHAT_SHARED_DIR"
"$ROOT/.venv/bin/python" -m pip install --disable-pip-version-check -q -r "$ROOT/bench/requirements-peer.txt" ||
    die "cannot install the peer's Python packages (bench/requirements-peer.txt)"

bench_setup messages
bench_release_build Gateway MessageWorker ChatLoad
svc_wipe "$DATA_DIR"
SERVICES_FSYNC=on bench_start_services "$DATA_DIR"
JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export JWT_SECRET
HZ="$(getconf CLK_TCK)"
BASE=9000000

start_worker() { # <id>
    env ADMIN_PORT=0 ADMIN_HOST=127.0.0.1 CHAT_ENV=production LOG_LEVEL=warn WORKER_ID="$1" DATABASE_URL="$DATABASE_URL" \
        REDIS_URL="$REDIS_URL" RATE_LIMIT_MESSAGES=off "$BIN_DIR/MessageWorker" >"$WORK/$1.log" 2>&1 &
    PIDS+=("$!")
    WORKER_PIDS+=("$!")
}
WORKER_PIDS=()
start_worker bench-w1
start_worker bench-w2
bench_start_gateway bench-send "$WORK/send.log"
SEND_PID=$GATEWAY_PID SEND_PORT=$GATEWAY_PORT
bench_start_gateway bench-recv "$WORK/recv.log"
RECV_PID=$GATEWAY_PID RECV_PORT=$GATEWAY_PORT
bench_seed_users "$BASE" $((2 * PAIRS))
REDIS_PID="$(svc_state_get "$DATA_DIR" REDIS_PID)"
PG_PID="$(svc_state_get "$DATA_DIR" PG_PID)"
sleep 2

ticks() { local total=0 pid; for pid in "$@"; do total=$((total + $(bench_cpu_ticks "$pid"))); done; echo "$total"; }
# Postgres: the postmaster's own time and its reaped children's (backends that exited, e.g.
# pgbench's), plus the live backends' own time.
postgres_ticks() {
    local own children
    own="$(sed 's/.*) //' "/proc/$PG_PID/stat" | awk '{ print $12 + $13 + $14 + $15 }')"
    children="$(ticks $(pgrep -P "$PG_PID" || true))"
    echo $((own + children))
}
us_per() { awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "-" }'; }
ms() { printf '%s' "$1" | grep -o "\"$2\":{[^}]*}" | grep -o "\"$3\":[0-9.]*" | cut -d: -f2; }

ROWS=()
for rate in $RATES; do
    say "offered $rate messages/s for ${SECONDS_PER_RATE}s over $PAIRS pairs"
    before=("$(ticks "$SEND_PID")" "$(ticks "$RECV_PID")" "$(ticks "${WORKER_PIDS[@]}")" "$(ticks "$REDIS_PID")" "$(postgres_ticks)")
    out="$("$BIN_DIR/ChatLoad" --url "ws://127.0.0.1:$SEND_PORT" --receiver-url "ws://127.0.0.1:$RECV_PORT" \
        --connections $((2 * PAIRS)) --user-base "$BASE" --message-rate "$rate" --message-seconds "$SECONDS_PER_RATE" \
        --close-timeout 2000 | tee "$WORK/load-$rate.out" | grep -E '^(messages done|\{"summary")')" || true
    after=("$(ticks "$SEND_PID")" "$(ticks "$RECV_PID")" "$(ticks "${WORKER_PIDS[@]}")" "$(ticks "$REDIS_PID")" "$(postgres_ticks)")
    summary="$(printf '%s\n' "$out" | grep '^{"summary"' || true)"
    [[ -n "$summary" ]] || die "ChatLoad gave no summary (see $WORK/load-$rate.out)"
    acked="$(bench_json_number <(printf '%s' "$summary") messagesAcknowledged)"
    delivered="$(bench_json_number <(printf '%s' "$summary") messagesDelivered)"
    errors="$(printf '%s' "$summary" | grep -o '"messageErrorsByCode":{[^}]*}' | cut -d: -f2- )"
    throughput="$(awk -v a="$acked" -v s="$SECONDS_PER_RATE" 'BEGIN { printf "%.0f", a / s }')"
    cpu=()
    for i in 0 1 2 3 4; do cpu+=("$(us_per $((after[i] - before[i])) "$acked")"); done
    row="| $rate | $throughput | $acked / $delivered | $(ms "$summary" ackLatencyMs p50) / $(ms "$summary" ackLatencyMs p99) / $(ms "$summary" ackLatencyMs p999) | $(ms "$summary" deliveryLatencyMs p50) / $(ms "$summary" deliveryLatencyMs p99) | ${errors} | ${cpu[0]} | ${cpu[1]} | ${cpu[2]} | ${cpu[3]} | ${cpu[4]} |"
    say "$row"
    ROWS+=("$row")
done

# The seeds' stack on the same servers, driven the same way.
start_peer() { # <port>
    env DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" JWT_SECRET="$JWT_SECRET" \
        "$ROOT/.venv/bin/python" "$SHARED/peer/peer.py" "$1" >"$WORK/peer-$1.log" 2>&1 &
    PIDS+=("$!")
    PEER_PID=$!
    local i
    for i in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
        kill -0 "$PEER_PID" 2>/dev/null || die "the peer on $1 exited: $(tail -5 "$WORK/peer-$1.log")"
        sleep 0.2
    done
    die "the peer on $1 did not answer /health"
}
PEER_SEND_PORT="$(free_port)"
start_peer "$PEER_SEND_PORT"
PEER_SEND_PID=$PEER_PID
PEER_RECV_PORT="$(free_port)"
start_peer "$PEER_RECV_PORT"
PEER_RECV_PID=$PEER_PID
bench_psql -c "INSERT INTO peer_users (id, username, email, password) SELECT g, 'load' || g, 'load' || g || '@load.invalid', 'x'
    FROM generate_series($BASE, $BASE + $((2 * PAIRS)) - 1) AS g ON CONFLICT DO NOTHING" >/dev/null
PEER_ROWS=()
for rate in $PEER_RATES; do
    say "peer: offered $rate messages/s for ${SECONDS_PER_RATE}s over $PAIRS pairs"
    before=("$(ticks "$PEER_SEND_PID")" "$(ticks "$PEER_RECV_PID")" "$(ticks "$REDIS_PID")" "$(postgres_ticks)")
    out="$("$BIN_DIR/ChatLoad" --url "ws://127.0.0.1:$PEER_SEND_PORT" --receiver-url "ws://127.0.0.1:$PEER_RECV_PORT" --peer-tokens \
        --connections $((2 * PAIRS)) --user-base "$BASE" --message-rate "$rate" --message-seconds "$SECONDS_PER_RATE" \
        --close-timeout 2000 --rate 200 | tee "$WORK/peer-load-$rate.out" | grep -E '^(messages done|\{"summary")')" || true
    after=("$(ticks "$PEER_SEND_PID")" "$(ticks "$PEER_RECV_PID")" "$(ticks "$REDIS_PID")" "$(postgres_ticks)")
    summary="$(printf '%s\n' "$out" | grep '^{"summary"' || true)"
    [[ -n "$summary" ]] || die "ChatLoad gave no summary against the peer (see $WORK/peer-load-$rate.out)"
    acked="$(bench_json_number <(printf '%s' "$summary") messagesAcknowledged)"
    delivered="$(bench_json_number <(printf '%s' "$summary") messagesDelivered)"
    throughput="$(awk -v a="$acked" -v s="$SECONDS_PER_RATE" 'BEGIN { printf "%.0f", a / s }')"
    cpu=()
    for i in 0 1 2 3; do cpu+=("$(us_per $((after[i] - before[i])) "$acked")"); done
    row="| $rate | $throughput | $acked / $delivered | $(ms "$summary" ackLatencyMs p50) / $(ms "$summary" ackLatencyMs p99) / $(ms "$summary" ackLatencyMs p999) | $(ms "$summary" deliveryLatencyMs p50) / $(ms "$summary" deliveryLatencyMs p99) | ${cpu[0]} | ${cpu[1]} | ${cpu[2]} | ${cpu[3]} |"
    say "$row"
    PEER_ROWS+=("$row")
done

# References, same servers: raw Postgres inserts in batches, raw Redis XADD and PUBLISH.
say "reference: raw Postgres insert of $BATCH-row batches (pgbench, 4 clients, 10 s, synchronous_commit on)"
bench_psql -c "CREATE TABLE IF NOT EXISTS bench_raw_messages (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id bigint NOT NULL, sender_id bigint NOT NULL, content text NOT NULL, client_msg_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())"
cat >"$WORK/insert.sql" <<SQL
INSERT INTO bench_raw_messages (conversation_id, sender_id, content, client_msg_id)
SELECT (random() * 1000)::bigint, $BASE, 'benchmark message content', md5(random()::text) FROM generate_series(1, $BATCH);
SQL
pg_before="$(postgres_ticks)"
pgbench_out="$(PGOPTIONS="-c synchronous_commit=on" "$SVC_PG_BIN/pgbench" -n -f "$WORK/insert.sql" -c 4 -j 2 -T 10 "$DATABASE_URL" 2>&1)"
sleep 1  # pgbench's backends exit as it does: let the postmaster reap them (their time joins its own)
pg_after="$(postgres_ticks)"
tps="$(printf '%s\n' "$pgbench_out" | grep -o 'tps = [0-9.]*' | head -n 1 | cut -d' ' -f3)"
raw_rows="$(awk -v t="$tps" -v b="$BATCH" 'BEGIN { printf "%.0f", t * b }')"
raw_cpu="$(us_per $((pg_after - pg_before)) $((raw_rows * 10)))"
REDIS_PORT_NUM="$(svc_state_get "$DATA_DIR" REDIS_PORT)"
xadd="$(redis-benchmark -p "$REDIS_PORT_NUM" -n 200000 -c 50 -P 16 -q XADD bench:raw:stream '*' v benchmark-payload-of-some-bytes 2>/dev/null | grep -o '[0-9.]* requests per second' | cut -d' ' -f1)"
publish="$(redis-benchmark -p "$REDIS_PORT_NUM" -n 200000 -c 50 -P 16 -q PUBLISH bench:raw:channel benchmark-payload-of-some-bytes 2>/dev/null | grep -o '[0-9.]* requests per second' | cut -d' ' -f1)"

# Throughput that counts: the highest acknowledged rate whose ack p99 stays under P99_BOUND_MS
# (past saturation an open-loop run still gets every ack, seconds late).
sustained() { awk -F'|' -v bound="${P99_BOUND_MS:-500}" '{ split($5, l, "/"); gsub(/ /, "", $3); if (l[2] + 0 <= bound && $3 + 0 > max) max = $3 + 0 } END { print max + 0 }'; }
best="$(printf '%s\n' "${ROWS[@]}" | sustained)"
ratio="$(awk -v b="$best" -v r="$raw_rows" 'BEGIN { if (r > 0) printf "%.3f", b / r; else print "-" }')"
peer_best="$(printf '%s\n' "${PEER_ROWS[@]}" | sustained)"
peer_ratio="$(awk -v b="$best" -v p="$peer_best" 'BEGIN { if (p > 0) printf "%.1f", b / p; else print "-" }')"
report="$WORK/report.md"
{
    echo "Messages, direct pairs ($PAIRS pairs: senders on one gateway, receivers on another; 2 workers; release build;"
    echo "durable commits; the message rate limit off, RATE_LIMIT_MESSAGES=off; ${SECONDS_PER_RATE}s per offered rate; open loop,"
    echo "latencies from each message's intended send time). CPU in µs per acknowledged message over the window."
    echo
    echo "| offered/s | acknowledged/s | acknowledged / delivered | ack p50 / p99 / p99.9 ms | delivery p50 / p99 ms | errors | sender gateway | receiver gateway | workers | Redis | Postgres |"
    echo "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "References, same run and servers:"
    echo
    echo "| reference | rate | Postgres CPU µs per row |"
    echo "|---|---:|---:|"
    echo "| raw insert, $BATCH-row batches (pgbench, 4 clients) | $raw_rows rows/s | $raw_cpu |"
    echo "| Redis XADD (pipelined 16, 50 clients) | $xadd /s | |"
    echo "| Redis PUBLISH (pipelined 16, 50 clients) | $publish /s | |"
    echo
    echo "Highest acknowledged rate with ack p99 under ${P99_BOUND_MS:-500} ms: $best/s = **$ratio** of the raw insert rate."
    echo
    echo "The seeds' stack (../shared/peer, two instances, same servers and generator):"
    echo
    echo "| offered/s | acknowledged/s | acknowledged / delivered | ack p50 / p99 / p99.9 ms | delivery p50 / p99 ms | sender instance | receiver instance | Redis | Postgres |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${PEER_ROWS[@]}"
    echo
    echo "Highest acknowledged rate with ack p99 under ${P99_BOUND_MS:-500} ms: this system $best/s, the seeds' stack $peer_best/s: **${peer_ratio}x**."
} >"$report"
cat "$report"
mkdir -p "$ROOT/bench/results"
cp "$report" "$ROOT/bench/results/messages-$(date -u +%Y%m%dT%H%M%SZ).md"
