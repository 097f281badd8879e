#!/usr/bin/env bash
# Drain benchmark (issue 18): a gateway holding DRAIN_SOCKETS sockets (5,000) gets SIGTERM, once
# closing them all at once (DRAIN_SPREAD_MS=0, the reference) and once spread over DRAIN_SPREAD_MS
# (5,000 ms), in the same run. Its clients (Tests/e2e/drain_clients.py: one asyncio process,
# raw Engine.IO over WebSocket) reconnect to the other gateway as socket.io-client would (after a
# 0.5-1.5 s delay) and call `sync`; a steady client in a process of its own calls `sync` every
# 20 ms on the other gateway throughout. Prints, per mode: the span of the closes, the reconnect
# rate the other gateway saw (peak over 1 s, mean), the reconnecting clients' `sync` latency and
# the steady client's (p50, p99, max). It is Tests/e2e/test_drain.py run with release binaries.
#
# Usage: bench/drain.sh
# Environment: DRAIN_SOCKETS (5000), DRAIN_SPREAD_MS (5000), SKIP_BUILD=1 reuses the last release
# build. Postgres and Redis live in .data/bench-drain/ (random free ports).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export DRAIN_SOCKETS="${DRAIN_SOCKETS:-5000}" DRAIN_SPREAD_MS="${DRAIN_SPREAD_MS:-5000}"
for name in DRAIN_SOCKETS DRAIN_SPREAD_MS; do
    [[ "${!name}" =~ ^[1-9][0-9]*$ ]] || die "$name must be a positive integer (got '${!name}')"
done

bench_setup drain
bench_release_build Gateway
svc_wipe "$DATA_DIR"
bench_start_services "$DATA_DIR"
say "draining $DRAIN_SOCKETS sockets, all at once and over $DRAIN_SPREAD_MS ms (release build, $(nproc) cores shared with the clients)"
env CHAT_BIN_DIR="$BIN_DIR" CHAT_SERVICES_DIR="$DATA_DIR" PG_BIN="$SVC_PG_BIN" \
    TEST_DATABASE_URL="$DATABASE_URL" TEST_REDIS_URL="$REDIS_URL" PYTHONDONTWRITEBYTECODE=1 \
    "$ROOT/.venv/bin/python" -m pytest -q -s -p no:cacheprovider "$ROOT/Tests/e2e/test_drain.py" |
    tee "$WORK/drain.out" | grep -E "^drain of|passed|failed"
mkdir -p "$ROOT/bench/results"
grep "^drain of" "$WORK/drain.out" >"$ROOT/bench/results/drain-$(date -u +%Y%m%dT%H%M%SZ).txt"
