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
# A room of ROOM_SIZE members (half on each gateway, each member sending in turn) is swept at
# ROOM_RATES the same way: every delivery is measured, and CPU is given per message and per delivery.
#
# Everything goes to bench/results/messages-<time>.{md,json}; bench/messages_report.py writes the
# tables and ratios, bench/plot_messages.py the plots in docs/img/ (PLOTS=0: none).
#
# Usage: bench/messages.sh
# Environment: RATES ("1000 2000 4000 8000 12000"), ROOM_RATES ("100 200 400 800 1600"), ROOM_SIZE
# (100), PEER_RATES ("250 500 1000 1500"), P99_BOUND_MS
# (500: the throughput compared is the highest acknowledged rate whose ack p99 stays under it),
# CHAT_SHARED_DIR (the team's shared folder holding peer/; default: next to this repository), SECONDS_PER_RATE (10), PAIRS (50), BATCH (100),
# SKIP_BUILD=1 reuses the last release build; PROFILE=<series>-<rate> (e.g. direct-8000) records
# that point system-wide with `perf record -a -g` into bench/results/. Postgres and Redis live in .data/bench-messages/.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RATES="${RATES-1000 2000 4000 8000 12000}"
SECONDS_PER_RATE="${SECONDS_PER_RATE:-10}"
PAIRS="${PAIRS:-50}"
BATCH="${BATCH:-100}"
for name in SECONDS_PER_RATE PAIRS BATCH; do
    [[ "${!name}" =~ ^[1-9][0-9]*$ ]] || die "$name must be a positive integer (got '${!name}')"
done
PEER_RATES="${PEER_RATES-250 500 1000 1500}"
ROOM_RATES="${ROOM_RATES-100 200 400 800 1600}"
ROOM_SIZE="${ROOM_SIZE:-100}"
[[ "$ROOM_SIZE" =~ ^[1-9][0-9]*$ && "$ROOM_SIZE" -ge 2 ]] || die "ROOM_SIZE must be an integer of at least 2 (got '$ROOM_SIZE')"
for rate in $RATES $ROOM_RATES $PEER_RATES; do [[ "$rate" =~ ^[1-9][0-9]*$ ]] || die "RATES and PEER_RATES must be positive integers (got '$rate')"; done
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

WORKER_PIDS=()
WORKER_ADMIN_PORTS=()
bench_start_worker bench-w1
bench_start_worker bench-w2
bench_start_gateway bench-send "$WORK/send.log"
SEND_PID=$GATEWAY_PID SEND_PORT=$GATEWAY_PORT
bench_start_gateway bench-recv "$WORK/recv.log"
RECV_PID=$GATEWAY_PID RECV_PORT=$GATEWAY_PORT
bench_seed_users "$BASE" $((2 * PAIRS + ROOM_SIZE))
ROOM_BASE=9000000
bench_seed_rooms "$ROOM_BASE" 1 "$ROOM_SIZE" $((BASE + 2 * PAIRS))
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
# CPU ticks of every process measured, as "name=ticks ..." (the peer's two instances in place of
# the gateways and workers).
# The workers' batches so far: "batches=<count> entries=<sum>" of their chat_batch_size histograms.
batches() {
    local port count=0 sum=0 metrics c n
    for port in "${WORKER_ADMIN_PORTS[@]}"; do
        metrics="$(curl -fsS "http://127.0.0.1:$port/metrics" || true)"
        c="$(printf '%s\n' "$metrics" | awk '$1 == "chat_batch_size_count" { printf "%d", $2 }')"
        n="$(printf '%s\n' "$metrics" | awk '$1 == "chat_batch_size_sum" { printf "%d", $2 }')"
        count=$((count + ${c:-0}))
        sum=$((sum + ${n:-0}))
    done
    echo "batches=$count entries=$sum"
}
our_ticks() {
    echo "sender_gateway=$(ticks "$SEND_PID") receiver_gateway=$(ticks "$RECV_PID") workers=$(ticks "${WORKER_PIDS[@]}") redis=$(ticks "$REDIS_PID") postgres=$(postgres_ticks) $(batches)"
}
peer_ticks() {
    echo "sender_instance=$(ticks "$PEER_SEND_PID") receiver_instance=$(ticks "$PEER_RECV_PID") redis=$(ticks "$REDIS_PID") postgres=$(postgres_ticks)"
}
us_per() { awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "0" }'; }
POINTS="$WORK/points.jsonl"
: >"$POINTS"

# One offered rate: ChatLoad for SECONDS_PER_RATE, CPU ticks of every process around it; the
# summary and the ticks go to POINTS as one JSON line.
run_point() { # <series> <rate> <ticks function> <ChatLoad arguments...>
    local series=$1 rate=$2 measure=$3 before after summary
    shift 3
    say "$series: offered $rate messages/s for ${SECONDS_PER_RATE}s"
    local perf_pid=""
    if [[ "${PROFILE:-}" == "$series-$rate" ]]; then
        perf record -a -g -F 499 -o "$WORK/perf-$series-$rate.data" >"$WORK/perf.log" 2>&1 &
        perf_pid=$!
    fi
    before="$($measure)"
    "$BIN_DIR/ChatLoad" --message-rate "$rate" --message-seconds "$SECONDS_PER_RATE" --close-timeout 2000 "$@" \
        >"$WORK/load-$series-$rate.out" 2>&1 || true
    after="$($measure)"
    if [[ -n "$perf_pid" ]]; then
        kill -INT "$perf_pid"
        wait "$perf_pid" || true
        mkdir -p "$ROOT/bench/results"
        cp "$WORK/perf-$series-$rate.data" "$ROOT/bench/results/"
        say "profile: bench/results/perf-$series-$rate.data (perf report -i ... --no-children --sort comm,dso,sym)"
    fi
    summary="$(grep '^{"summary"' "$WORK/load-$series-$rate.out" || true)"
    [[ -n "$summary" ]] || die "ChatLoad gave no summary (see $WORK/load-$series-$rate.out)"
    grep '^messages done' "$WORK/load-$series-$rate.out" || true
    printf '{"series":"%s","offered":%s,"seconds":%s,"hz":%s,"before":"%s","after":"%s","load":%s}\n' \
        "$series" "$rate" "$SECONDS_PER_RATE" "$HZ" "$before" "$after" "$summary" >>"$POINTS"
}

# Warm-up, not measured: the pairs' conversations are created, caches and pools filled.
"$BIN_DIR/ChatLoad" --message-rate 500 --message-seconds 2 --close-timeout 2000 --url "ws://127.0.0.1:$SEND_PORT" \
    --receiver-url "ws://127.0.0.1:$RECV_PORT" --connections $((2 * PAIRS)) --user-base "$BASE" >"$WORK/warm-up.out" 2>&1 || true
# A lone message: one pair at LONE_RATE (20) messages/s, nothing else going on.
run_point lone "${LONE_RATE:-20}" our_ticks --url "ws://127.0.0.1:$SEND_PORT" --receiver-url "ws://127.0.0.1:$RECV_PORT" \
    --connections 2 --user-base "$BASE"
for rate in $RATES; do
    run_point direct "$rate" our_ticks --url "ws://127.0.0.1:$SEND_PORT" --receiver-url "ws://127.0.0.1:$RECV_PORT" \
        --connections $((2 * PAIRS)) --user-base "$BASE"
done
# A room of ROOM_SIZE members (users after the pairs'), half of them on each gateway; every member sends in turn.
ROOM_USERS=$((BASE + 2 * PAIRS))
for rate in $ROOM_RATES; do
    run_point room "$rate" our_ticks --url "ws://127.0.0.1:$SEND_PORT" --receiver-url "ws://127.0.0.1:$RECV_PORT" \
        --connections "$ROOM_SIZE" --user-base "$ROOM_USERS" --room-size "$ROOM_SIZE" --room-base "$ROOM_BASE"
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
if [[ -n "${PEER_RATES// /}" ]]; then
    PEER_SEND_PORT="$(free_port)"
    start_peer "$PEER_SEND_PORT"
    PEER_SEND_PID=$PEER_PID
    PEER_RECV_PORT="$(free_port)"
    start_peer "$PEER_RECV_PORT"
    PEER_RECV_PID=$PEER_PID
    bench_psql -c "INSERT INTO peer_users (id, username, email, password) SELECT g, 'load' || g, 'load' || g || '@load.invalid', 'x'
        FROM generate_series($BASE, $BASE + $((2 * PAIRS)) - 1) AS g ON CONFLICT DO NOTHING" >/dev/null
    for rate in $PEER_RATES; do
        run_point peer "$rate" peer_ticks --url "ws://127.0.0.1:$PEER_SEND_PORT" --receiver-url "ws://127.0.0.1:$PEER_RECV_PORT" \
            --peer-tokens --rate 200 --connections $((2 * PAIRS)) --user-base "$BASE"
    done
fi

# References, same servers: raw Postgres inserts in batches (pgbench, 4 clients, 10 s,
# synchronous_commit on), raw Redis XADD and PUBLISH.
# bare: message-shaped rows into a table with a primary key only, BATCH rows per statement.
# shaped: the same rows into a copy of `messages` (every index, check and foreign key: the two
# full-text GIN indexes, the unique keys), as many per statement as the workers' batches held
# at the highest direct rate that kept ack p99 under the bound.
raw_insert() { # <table> <rows per statement> <columns> <select list> -> "rows/s cpu-µs-per-row"
    local pg_before pg_after out tps rows
    cat >"$WORK/insert-$1.sql" <<SQL
INSERT INTO $1 ($3) SELECT $4 FROM generate_series(1, $2);
SQL
    pg_before="$(postgres_ticks)"
    out="$(PGOPTIONS="-c synchronous_commit=on" "$SVC_PG_BIN/pgbench" -n -f "$WORK/insert-$1.sql" -c 4 -j 2 -T 10 "$DATABASE_URL" 2>&1)"
    sleep 1  # pgbench's backends exit as it does: let the postmaster reap them (their time joins its own)
    pg_after="$(postgres_ticks)"
    tps="$(printf '%s\n' "$out" | grep -o 'tps = [0-9.]*' | head -n 1 | cut -d' ' -f3)"
    [[ -n "$tps" ]] || die "pgbench failed: $out"
    rows="$(awk -v t="$tps" -v b="$2" 'BEGIN { printf "%.0f", t * b }')"
    echo "$rows $(us_per $((pg_after - pg_before)) $((rows * 10)))"
}
say "reference: raw Postgres insert of $BATCH-row batches into a bare table"
bench_psql -c "CREATE TABLE IF NOT EXISTS bench_raw_messages (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id bigint NOT NULL, sender_id bigint NOT NULL, content text NOT NULL, client_msg_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())"
read -r raw_rows raw_cpu < <(raw_insert bench_raw_messages "$BATCH" "conversation_id, sender_id, content, client_msg_id" \
    "(random() * 1000)::bigint, $BASE, (random() * 1e14)::bigint::text, md5(random()::text)")
SHAPED_BATCH="$("$ROOT/.venv/bin/python" "$ROOT/bench/messages_report.py" "$POINTS" --batch-at-best --p99-bound-ms "${P99_BOUND_MS:-500}")"
[[ "$SHAPED_BATCH" =~ ^[1-9][0-9]*$ ]] || SHAPED_BATCH=$BATCH
say "reference: raw Postgres insert of $SHAPED_BATCH-row batches into a copy of messages (indexes, checks, foreign keys)"
bench_psql >/dev/null <<SQL
CREATE TABLE IF NOT EXISTS bench_shaped_messages (LIKE messages INCLUDING ALL);
ALTER TABLE bench_shaped_messages ADD FOREIGN KEY (conversation_id) REFERENCES conversations (id),
    ADD FOREIGN KEY (sender_id) REFERENCES users (id);
CREATE SEQUENCE IF NOT EXISTS bench_shaped_seq;
SQL
CONVERSATION="$(bench_psql -c "SELECT min(id) FROM conversations WHERE kind = 'direct'")"
read -r shaped_rows shaped_cpu < <(raw_insert bench_shaped_messages "$SHAPED_BATCH" "conversation_id, seq, sender_id, client_msg_id, content" \
    "$CONVERSATION, nextval('bench_shaped_seq'), $BASE, md5(random()::text), (random() * 1e14)::bigint::text")
REDIS_PORT_NUM="$(svc_state_get "$DATA_DIR" REDIS_PORT)"
xadd="$(redis-benchmark -p "$REDIS_PORT_NUM" -n 200000 -c 50 -P 16 -q XADD bench:raw:stream '*' v benchmark-payload-of-some-bytes 2>/dev/null | grep -o '[0-9.]* requests per second' | cut -d' ' -f1)"
publish="$(redis-benchmark -p "$REDIS_PORT_NUM" -n 200000 -c 50 -P 16 -q PUBLISH bench:raw:channel benchmark-payload-of-some-bytes 2>/dev/null | grep -o '[0-9.]* requests per second' | cut -d' ' -f1)"

printf '{"rawInsertRowsPerSecond":%s,"rawInsertCpuUsPerRow":%s,"rawInsertBatch":%s,"shapedInsertRowsPerSecond":%s,"shapedInsertCpuUsPerRow":%s,"shapedInsertBatch":%s,"xaddPerSecond":%s,"publishPerSecond":%s}\n' \
    "$raw_rows" "$raw_cpu" "$BATCH" "$shaped_rows" "$shaped_cpu" "$SHAPED_BATCH" "${xadd:-0}" "${publish:-0}" >"$WORK/references.json"
report="$WORK/report.md"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$ROOT/bench/results"
"$ROOT/.venv/bin/python" "$ROOT/bench/messages_report.py" "$POINTS" "$WORK/references.json" \
    --pairs "$PAIRS" --room-size "$ROOM_SIZE" --p99-bound-ms "${P99_BOUND_MS:-500}" \
    --markdown "$report" --json "$ROOT/bench/results/messages-$stamp.json"
cat "$report"
cp "$report" "$ROOT/bench/results/messages-$stamp.md"
if [[ "${PLOTS:-1}" == 1 ]]; then
    "$ROOT/.venv/bin/python" -m pip install --disable-pip-version-check -q -r "$ROOT/bench/requirements-plot.txt" ||
        die "cannot install the plotting package (bench/requirements-plot.txt)"
    "$ROOT/.venv/bin/python" "$ROOT/bench/plot_messages.py" "$ROOT/bench/results/messages-$stamp.json" "$ROOT/docs/img"
    say "plots: docs/img/messages-throughput.svg, docs/img/messages-latency.svg"
fi
