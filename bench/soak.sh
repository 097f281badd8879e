#!/usr/bin/env bash
# Soak (issue 17, item 6): mixed traffic at about half the maximum rate for SOAK_SECONDS (10
# minutes), all at once, on two gateways (A: senders, B: receivers), two workers, Redis and Postgres
# (fsync on, synchronous_commit on), release build, the message rate limit off
# (RATE_LIMIT_MESSAGES=off):
#
#   direct  ChatLoad, PAIRS sender/receiver pairs (senders on A, receivers on B), DIRECT_RATE
#           messages/s open loop (2,500/s: 0.31 of the 8,000/s bench/messages.sh measured as the
#           highest rate with ack p99 under 500 ms on this 2-CPU host, docs/BENCHMARKS.md)
#   room    ChatLoad, one room of ROOM_SIZE members (half on each gateway), ROOM_RATE messages/s
#           (40/s, 3,960 deliveries/s: 0.1 of the room's 400/s there)
#   The three streams share the host: together with the churn they are about half of it.
#   churn   bench/soak_client.py: CHURN_USERS users connecting and disconnecting (sessions of
#           1-10 s), CHURN_OPS operations/s in all: connect, disconnect, typing, stopTyping,
#           presenceSubscribe, sendMessage, and REST reads (conversations, unread counts, history)
#
# The three use disjoint users. Reported (markdown on stdout and in bench/results/soak-<time>.md):
# RSS (VmRSS) and open file descriptors of every server process (both gateways, both workers,
# Redis, the postmaster and the sum over its children) before the traffic, after WARMUP seconds of
# it (the start: allocators and pools have warmed up), at every minute, at the end (2 s before the
# traffic stops) and 5 s after it, with the change from start to end and a verdict per process:
# flat when within FLAT_PERCENT, else GREW. Compared for a gateway: its fds other than its
# established client connections (the churn moves those by design; one it failed to close still
# counts); for the Postgres children: their private memory (RssAnon; their VmRSS grows with the
# shared buffers each touches); a change of at most 2 fds is flat. Also: errors by code from every
# source; per minute the p99 of direct ack and delivery, room ack and delivery (ChatLoad
# --interval 60) and of the churn client's operations; sent, acknowledged and delivered totals.
# The report is written by bench/soak_client.py report.
#
# Exit status: 1 when a traffic source could not run (no summary, or nothing acknowledged); with
# STRICT=1 also when a process grew beyond FLAT_PERCENT; 0 otherwise (growth is in the verdict).
#
# Usage: bench/soak.sh
# Environment:
#   SOAK_SECONDS (600)   traffic duration
#   WARMUP (30)          seconds of traffic before the start sample (allocator and pool warm-up)
#   DIRECT_RATE (2500)   direct messages/s      PAIRS (50)      sender/receiver pairs
#   ROOM_RATE (40)       room messages/s         ROOM_SIZE (100) room members
#   CHURN_USERS (200)    churning users         CHURN_OPS (50)  their operations/s in all
#   FLAT_PERCENT (10)    the bound on |change| of RSS and fds from start to end
#   STRICT=1             exit 1 when a process grew beyond the bound
#   SKIP_BUILD=1         reuse the last release build
# Short trial: SOAK_SECONDS=90 WARMUP=15 DIRECT_RATE=500 ROOM_RATE=10 CHURN_OPS=20 bench/soak.sh
# Postgres and Redis live in .data/bench-soak/ (wiped each run).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SOAK_SECONDS="${SOAK_SECONDS:-600}"
WARMUP="${WARMUP:-30}"
DIRECT_RATE="${DIRECT_RATE:-2500}"
PAIRS="${PAIRS:-50}"
ROOM_RATE="${ROOM_RATE:-40}"
ROOM_SIZE="${ROOM_SIZE:-100}"
CHURN_USERS="${CHURN_USERS:-200}"
CHURN_OPS="${CHURN_OPS:-50}"
FLAT_PERCENT="${FLAT_PERCENT:-10}"
STRICT="${STRICT:-0}"
for name in SOAK_SECONDS WARMUP DIRECT_RATE PAIRS ROOM_RATE ROOM_SIZE CHURN_USERS CHURN_OPS FLAT_PERCENT; do
    [[ "${!name}" =~ ^[1-9][0-9]*$ ]] || die "$name must be a positive integer (got '${!name}')"
done
((ROOM_SIZE >= 2)) || die "ROOM_SIZE must be at least 2 (got $ROOM_SIZE)"
((CHURN_USERS >= 11)) || die "CHURN_USERS must be at least 11 (each has 8 friends; got $CHURN_USERS)"
((SOAK_SECONDS >= WARMUP + 10)) || die "SOAK_SECONDS must be at least WARMUP + 10 (got $SOAK_SECONDS and $WARMUP)"
[[ "$STRICT" == 0 || "$STRICT" == 1 ]] || die "STRICT must be 0 or 1 (got '$STRICT')"
# The measured maximum the default DIRECT_RATE halves (bench/messages.sh, docs/BENCHMARKS.md).
DIRECT_MAX=8000
INTERVAL=60

bench_setup soak
# The churn client's socket library: python-socketio's AsyncClient runs on aiohttp, which the
# tests' .venv does not pin; the version the peer's requirements pin.
if ! "$ROOT/.venv/bin/python" -c 'import aiohttp, socketio' 2>/dev/null; then
    "$ROOT/.venv/bin/python" -m pip install --disable-pip-version-check -q "$(grep '^aiohttp==' "$ROOT/bench/requirements-peer.txt")" ||
        die "cannot install aiohttp into .venv (bench/requirements-peer.txt pins it)"
fi

header "release build"
bench_release_build Gateway MessageWorker ChatLoad

header "PostgreSQL and Redis in .data/bench-soak"
svc_wipe "$DATA_DIR"
SERVICES_FSYNC=on bench_start_services "$DATA_DIR"
JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export JWT_SECRET
ulimit -Sn "$(ulimit -Hn)"

header "two workers, two gateways, users and the room"
WORKER_PIDS=()
WORKER_ADMIN_PORTS=()
bench_start_worker soak-w1
bench_start_worker soak-w2
bench_start_gateway soak-a "$WORK/gateway-a.log"
A_PID=$GATEWAY_PID A_PORT=$GATEWAY_PORT
bench_start_gateway soak-b "$WORK/gateway-b.log"
B_PID=$GATEWAY_PID B_PORT=$GATEWAY_PORT
# Users: the pairs', then the room's, then the churning ones (disjoint); the room's id is in the
# conversations' id space, far above the direct conversations the traffic creates.
BASE=9000000
ROOM_USERS=$((BASE + 2 * PAIRS))
CHURN_BASE=$((ROOM_USERS + ROOM_SIZE))
ROOM_ID=9000000
bench_seed_users "$BASE" $((2 * PAIRS + ROOM_SIZE + CHURN_USERS))
bench_seed_rooms "$ROOM_ID" 1 "$ROOM_SIZE" "$ROOM_USERS"
REDIS_PID="$(svc_state_get "$DATA_DIR" REDIS_PID)"
PG_PID="$(svc_state_get "$DATA_DIR" PG_PID)"
[[ -n "$REDIS_PID" && -n "$PG_PID" ]] || die "no Redis or Postgres pid in $DATA_DIR/state"
sleep 2

# VmRSS and RssAnon (kB) and open fds of <pid> as "rss anon fds"; "0 0 0" once it is gone.
proc_usage() {
    local mem fds
    mem="$(awk '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 } END { print r + 0, a + 0 }' "/proc/$1/status" 2>/dev/null || true)"
    fds="$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l || true)"
    echo "${mem:-0 0} $fds"
}
proc_json() { # <pid>
    local rss anon fds
    read -r rss anon fds <<<"$(proc_usage "$1")"
    printf '{"rssKb":%s,"anonKb":%s,"fds":%s}' "$rss" "$anon" "$fds"
}
# A gateway, with its established client connections (sockets and REST keep-alives: TCP
# connections whose local port is its port), each of which holds one of its fds.
gateway_json() { # <pid> <port>
    local rss anon fds sockets
    read -r rss anon fds <<<"$(proc_usage "$1")"
    sockets="$(awk -v p=":$(printf '%04X' "$2")" '$4 == "01" && substr($2, length($2) - 4) == p { n++ } END { print n + 0 }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null || true)"
    printf '{"rssKb":%s,"anonKb":%s,"fds":%s,"sockets":%s}' "$rss" "$anon" "$fds" "${sockets:-0}"
}
# The postmaster's children (backends, checkpointer, walwriter, autovacuum...), summed.
backends_json() {
    local total_rss=0 total_anon=0 total_fds=0 count=0 pid rss anon fds
    for pid in $(pgrep -P "$PG_PID" || true); do
        read -r rss anon fds <<<"$(proc_usage "$pid")"
        total_rss=$((total_rss + rss)) total_anon=$((total_anon + anon)) total_fds=$((total_fds + fds)) count=$((count + 1))
    done
    printf '{"rssKb":%s,"anonKb":%s,"fds":%s,"count":%s}' "$total_rss" "$total_anon" "$total_fds" "$count"
}
SAMPLES="$WORK/samples.jsonl"
: >"$SAMPLES"
sample() { # <label>
    local line
    line="$(printf '{"label":"%s","t":%s,"processes":{"gateway A":%s,"gateway B":%s,"worker 1":%s,"worker 2":%s,"Redis":%s,"Postgres postmaster":%s,"Postgres backends":%s}}' \
        "$1" $((SECONDS - T0)) "$(gateway_json "$A_PID" "$A_PORT")" "$(gateway_json "$B_PID" "$B_PORT")" \
        "$(proc_json "${WORKER_PIDS[0]}")" "$(proc_json "${WORKER_PIDS[1]}")" "$(proc_json "$REDIS_PID")" "$(proc_json "$PG_PID")" \
        "$(backends_json)")"
    printf '%s\n' "$line" >>"$SAMPLES"
    say "t=$((SECONDS - T0)) s, $1: $(printf '%s' "$line" | grep -o '"gateway [AB]":{[^}]*}' | tr -d '"{}' | tr '\n' ' ')"
}

header "traffic for $SOAK_SECONDS s: direct $DIRECT_RATE/s, room $ROOM_RATE/s x $((ROOM_SIZE - 1)), churn $CHURN_USERS users at $CHURN_OPS operations/s"
T0=$SECONDS
sample before
"$BIN_DIR/ChatLoad" --url "ws://127.0.0.1:$A_PORT" --receiver-url "ws://127.0.0.1:$B_PORT" --connections $((2 * PAIRS)) \
    --user-base "$BASE" --message-rate "$DIRECT_RATE" --message-seconds "$SOAK_SECONDS" --interval "$INTERVAL" \
    --close-timeout 2000 >"$WORK/direct.out" 2>&1 &
DIRECT_PID=$!
PIDS+=("$DIRECT_PID")
"$BIN_DIR/ChatLoad" --url "ws://127.0.0.1:$A_PORT" --receiver-url "ws://127.0.0.1:$B_PORT" --connections "$ROOM_SIZE" \
    --user-base "$ROOM_USERS" --room-size "$ROOM_SIZE" --room-base "$ROOM_ID" --message-rate "$ROOM_RATE" \
    --message-seconds "$SOAK_SECONDS" --interval "$INTERVAL" --close-timeout 2000 >"$WORK/room.out" 2>&1 &
ROOM_PID=$!
PIDS+=("$ROOM_PID")
"$ROOT/.venv/bin/python" "$ROOT/bench/soak_client.py" run --url "http://127.0.0.1:$A_PORT" --url "http://127.0.0.1:$B_PORT" \
    --user-base "$CHURN_BASE" --users "$CHURN_USERS" --ops-rate "$CHURN_OPS" --seconds "$SOAK_SECONDS" >"$WORK/client.out" 2>&1 &
CLIENT_PID=$!
PIDS+=("$CLIENT_PID")
TRAFFIC=("direct:$DIRECT_PID" "room:$ROOM_PID" "churn:$CLIENT_PID")

# Says once when a traffic source ended before its time.
declare -A ENDED=()
check_traffic() {
    local entry name pid
    for entry in "${TRAFFIC[@]}"; do
        name=${entry%%:*} pid=${entry#*:}
        if [[ -z "${ENDED[$name]:-}" ]] && ! kill -0 "$pid" 2>/dev/null; then
            ENDED[$name]=$((SECONDS - T0))
            warn "the $name traffic ended at t=${ENDED[$name]} s, before the end of the soak ($WORK)"
        fi
    done
}
sample_at() { # <seconds after the traffic started>
    while ((SECONDS - T0 < $1)); do
        check_traffic
        sleep 0.5
    done
}
# Start after the warm-up, one per minute, and the end 2 s before the traffic stops.
END_AT=$((SOAK_SECONDS - 2))
SCHEDULE=("$WARMUP start")
for ((m = INTERVAL; m < END_AT; m += INTERVAL)); do SCHEDULE+=("$m minute $((m / INTERVAL))"); done
SCHEDULE+=("$END_AT end")
while read -r at label; do
    sample_at "$at"
    if [[ "$label" == start ]]; then
        check_traffic
        ((${#ENDED[@]} < ${#TRAFFIC[@]})) || die "no traffic ran: see $WORK/direct.out, room.out, client.out"
    fi
    sample "$label"
done < <(printf '%s\n' "${SCHEDULE[@]}" | sort -n -s -k1,1)

# ChatLoad drains for up to 15 s and closes; the client stops at its deadline: bounded either way.
say "waiting for the traffic to finish"
while ((SECONDS - T0 < SOAK_SECONDS + 45)); do
    alive=0
    for entry in "${TRAFFIC[@]}"; do kill -0 "${entry#*:}" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 1
done
declare -A STATUS=()
for entry in "${TRAFFIC[@]}"; do
    name=${entry%%:*} pid=${entry#*:}
    if kill -0 "$pid" 2>/dev/null; then
        warn "the $name traffic did not finish: SIGTERM"
        kill -TERM "$pid" 2>/dev/null || true
        sleep 3
        kill -KILL "$pid" 2>/dev/null || true
    fi
    status=0
    wait "$pid" || status=$?
    STATUS[$name]=$status
done
sleep 5
sample after

grep -h '^messages done' "$WORK/direct.out" "$WORK/room.out" || true
grep '^soak client minute' "$WORK/client.out" | tail -n 1 || true
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
ended=""
for name in "${!ENDED[@]}"; do ended+="${ended:+,}\"$name\":${ENDED[$name]}"; done
settings="$(printf '{"seconds":%s,"warmup":%s,"directRate":%s,"directMax":%s,"pairs":%s,"roomRate":%s,"roomSize":%s,"churnUsers":%s,"churnOps":%s,"flatPercent":%s,"cpus":%s,"stamp":"%s","exit":{"direct":%s,"room":%s,"churn":%s},"endedEarly":{%s}}' \
    "$SOAK_SECONDS" "$WARMUP" "$DIRECT_RATE" "$DIRECT_MAX" "$PAIRS" "$ROOM_RATE" "$ROOM_SIZE" "$CHURN_USERS" "$CHURN_OPS" \
    "$FLAT_PERCENT" "$(nproc)" "$stamp" "${STATUS[direct]}" "${STATUS[room]}" "${STATUS[churn]}" "$ended")"
report_status=0
"$ROOT/.venv/bin/python" "$ROOT/bench/soak_client.py" report --samples "$SAMPLES" --direct "$WORK/direct.out" \
    --room "$WORK/room.out" --client "$WORK/client.out" --settings "$settings" --markdown "$WORK/report.md" ||
    report_status=$?
((report_status == 0 || report_status == 3)) || die "the report could not be written (status $report_status)"
mkdir -p "$ROOT/bench/results"
say ""
cat "$WORK/report.md"
cp "$WORK/report.md" "$ROOT/bench/results/soak-$stamp.md"
say "saved bench/results/soak-$stamp.md (logs in $WORK)"

# Could not run: a source without its summary, or one whose traffic was never acknowledged.
failed=()
grep -q '"messagesAcknowledged":[1-9]' "$WORK/direct.out" || failed+=("direct (exit ${STATUS[direct]})")
grep -q '"messagesAcknowledged":[1-9]' "$WORK/room.out" || failed+=("room (exit ${STATUS[room]})")
grep -q '^{"soakClient".*"ok":[1-9]' "$WORK/client.out" || failed+=("churn (exit ${STATUS[churn]})")
((${#failed[@]} == 0)) || die "traffic that could not run: ${failed[*]} (see $WORK)"
if ((report_status == 3)) && [[ "$STRICT" == 1 ]]; then
    die "RSS or open fds changed by more than $FLAT_PERCENT % (STRICT=1)"
fi
